"""The bulk paths on the real PostgreSQL: a rule change decides every household as `assess` does (the inputs
packed by migration 009, read as columns), announces the changed ones with events true to the contract, keeps
their history; a what-if with another rule set counts what `assess` would decide, and changes nothing."""

from __future__ import annotations

import json
import random
import uuid
from datetime import date
from pathlib import Path

import pytest

import ejsika_eligibility
from ejsika_contracts import EligibilityAssessed
from ejsika_eligibility import household_columns, rule_book, rule_change, what_if
from ejsika_eligibility.domain.assessment import AssessmentInputs, Context, assess
from ejsika_eligibility.domain.rules import DEFAULTS, load
from ejsika_runtime.outbox import Outbox

from ..unit.test_columns import random_household

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"
TODAY = date(2026, 11, 28)


# rule_book keeps each (programme, version) parsed for the process: a number no other test loads
VERSION = 42


def stricter() -> dict:
    document = json.loads((DEFAULTS / "jamsosratu.v1.json").read_text())
    document["indicators"]["no_electricity"]["weight"] = 7
    document["indicators"]["bamboo_or_unplastered_walls"]["weight"] = 5
    document.update(version=VERSION, entry={"max_desil": 3})
    return document


@pytest.fixture
async def register(migrated_schema):
    schema, pool = await migrated_schema("eligibility", MIGRATIONS)
    rng = random.Random(7)
    households = [random_household(rng) for _ in range(300)]
    households[0].update(members=[], welfare={})  # nothing known yet
    statuses = ["active" if i % 3 == 0 else "candidate" for i in range(len(households))]
    await pool.execute(
        "INSERT INTO households (household_id, programme, region_code, inputs, enrolment_status) SELECT u.h,"
        " 'jamsosratu', '3601011001', u.i, u.s FROM unnest($1::uuid[], $2::json[], $3::text[]) AS u(h, i, s)",
        [uuid.UUID(h["household_id"]) for h in households], [json.dumps(h) for h in households], statuses)
    await rule_book.seed_defaults(pool)
    return schema, pool, {uuid.UUID(h["household_id"]): (AssessmentInputs.model_validate(h), s == "active")
                          for h, s in zip(households, statuses)}


async def test_the_packed_inputs_read_back_as_the_households_were_written(register):
    _, pool, households = register
    async with pool.acquire() as conn:
        frame = await household_columns.read_all(conn, "jamsosratu", chunk=64)  # in chunks, put back together
    ids = [household_columns.uuid_of(i) for i in frame.ids]
    assert ids == sorted(households)
    for row, household_id in enumerate(ids):
        inputs, active = households[household_id]
        assert bool(frame.active[row]) == active
        assert frame.escalation[row] == (inputs.escalation.kind if inputs.escalation else None)
        assert int(frame.welfare_version[row]) == inputs.welfare_version
        for name, values in frame.welfare.items():
            value = inputs.welfare.get(name)
            assert (values[row] != values[row]) if value is None else values[row] == float(value)
        mine = frame.member_household == row
        assert [uuid.UUID(bytes=bytes(m).ljust(16, b"\0")) if has else None
                for m, has in zip(frame.member_id[mine], frame.member_has_id[mine])] == [
            m.member_id for m in inputs.members]
        assert list(frame.birth_date[mine].astype(object)) == [m.birth_date for m in inputs.members]


async def test_a_rule_change_decides_as_assess_announces_true_events_and_keeps_their_history(register):
    schema, pool, households = register
    outbox = Outbox(schema)
    await pool.execute("INSERT INTO rule_sets (programme, version, document, loaded_by) VALUES ('jamsosratu', $1, $2,"
                       " 'test')", VERSION, json.dumps(stricter()))
    v1 = await rule_book.version(pool, "jamsosratu", 1)
    rules = await rule_book.version(pool, "jamsosratu", VERSION)
    # the v1 decisions in force, as a first rule change writes them (all announced)
    await pool.execute("UPDATE rule_sets SET active = false WHERE programme = 'jamsosratu'")
    for rule_set, size in ((v1, 64), (rules, 50)):
        job = await rule_change.activate(pool, "jamsosratu", rule_set.version, "test")
        assert await rule_change.run(pool, outbox, job, chunk_size=size, today=TODAY)
    stored = {r["household_id"]: r for r in await pool.fetch(
        "SELECT * FROM decisions WHERE programme = 'jamsosratu' AND rule_version = $1 AND active_rule", VERSION)}
    assert set(stored) == set(households)
    before = {r["household_id"]: r for r in await pool.fetch("SELECT * FROM decisions WHERE rule_version = 1")}
    changed = set()
    for household_id, (inputs, active) in households.items():
        decision = assess(inputs, rules, TODAY, Context(0, active))
        row = stored[household_id]
        assert (row["fingerprint"], row["status"], row["desil"], row["components"], row["yearly_amount"],
                row["graduation"], row["proposed_exit"], row["missing"]) == (
            decision.fingerprint, decision.status, decision.desil, decision.components, decision.yearly_amount,
            decision.graduation, (decision.proposed_exit or {}).get("kind"), list(decision.missing))
        old = before[household_id]
        if (old["status"], old["desil"], old["components"], old["yearly_amount"], old["graduation"],
                old["proposed_exit"]) != (row["status"], row["desil"], row["components"], row["yearly_amount"],
                                          row["graduation"], row["proposed_exit"]):
            changed.add(household_id)
    rows = await pool.fetch("SELECT value, headers::text FROM outbox WHERE topic = 'ejsika.eligibility' ORDER BY id")
    events = [EligibilityAssessed.model_validate_json(bytes(r["value"])) for r in rows]
    announced = [e for e in events if e.data.rule_version == VERSION]
    assert 0 < len(changed) < len(households)
    assert {e.data.household_id for e in announced} == changed and len(announced) == len(changed)
    for event, row in zip(events[-len(announced):], rows[-len(announced):]):
        inputs, active = households[event.data.household_id]
        assert event.data == assess(inputs, rules, TODAY, Context(0, active)).event_data()
        assert event.id == stored[event.data.household_id]["event_id"]
        assert dict(json.loads(row["headers"]))["ce_id"] == str(event.id)
    history = await pool.fetch("SELECT event_id, inputs::text, explanation::text, benefits::text FROM assessments"
                               " WHERE rule_version = $1", VERSION)
    assert {r["event_id"] for r in history} == {e.id for e in announced}
    by_id = {e.id: e for e in announced}
    for r in history:
        event = by_id[r["event_id"]]
        assert AssessmentInputs.model_validate_json(r["inputs"]) == households[event.data.household_id][0]
        assert json.loads(r["explanation"]) == json.loads(event.data.model_dump_json())["explanation"]
        assert json.loads(r["benefits"]) == json.loads(event.data.model_dump_json())["benefits"]


async def test_a_what_if_with_another_rule_set_counts_what_assess_would_decide_and_changes_nothing(register):
    schema, pool, households = register
    outbox = Outbox(schema)
    # the v1 decisions in force, as a rule change writes them
    await pool.execute("UPDATE rule_sets SET active = false WHERE programme = 'jamsosratu'")
    job = await rule_change.activate(pool, "jamsosratu", 1, "test")
    await rule_change.run(pool, outbox, job, today=TODAY)
    tables = ("households", "decisions", "assessments", "outbox", "rule_sets")

    async def state() -> dict:
        return {t: sorted(tuple(r) for r in await pool.fetch(f"SELECT * FROM {t}")) for t in tables}

    before = await state()
    rules = load(stricter())
    async with pool.acquire() as conn:
        answer = await what_if.run(conn, what_if.Scenario("jamsosratu", TODAY.year, rule_set=rules), TODAY)
    eligible = sum(assess(inputs, rules, TODAY, Context(0, active)).status == "eligible"
                   for inputs, active in households.values())
    before_eligible = sum(assess(inputs, load(json.loads((DEFAULTS / "jamsosratu.v1.json").read_text())), TODAY,
                                 Context(0, active)).status == "eligible" for inputs, active in households.values())
    assert answer["households"] == len(households)
    assert answer["eligible"] == {"before": before_eligible, "after": eligible}
    assert eligible < before_eligible  # entry up to desil 3 instead of 4
    assert await state() == before
