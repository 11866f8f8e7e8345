"""The narrow household state (migration 016) always says what the wide rows of `households` say: after each kind
of input write (registration, household and member changes, a move, a split, enrolment, monitoring's visits and
verifications, an escalation), after writes of other columns, and after a direct insert or delete of rows."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pytest

import ejsika_eligibility
from ejsika_eligibility.household_columns import ENROLMENTS, State
from ejsika_eligibility.domain.columns import SEXES
from ejsika_eligibility.domain.rules import INDICATORS
from ejsika_eligibility.inputs import Inputs
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.unit_of_work import UnitOfWork

from ..family_events import POOR, Family, member

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"


@pytest.fixture
async def eligibility(migrated_schema):
    name, pool = await migrated_schema("eligibility", MIGRATIONS)
    inputs = Inputs()

    async def apply(*events) -> None:
        async with pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn)
            await inputs.apply(uow, list(events))
            await Outbox(name).add(conn, uow.events)

    return pool, apply


def expected(row) -> dict:
    """What the wide row says, read from its inputs JSON here (not by PostgreSQL's packing)."""
    inputs = json.loads(row["inputs"]) if isinstance(row["inputs"], str) else row["inputs"]
    welfare = inputs.get("welfare") or {}
    members = inputs.get("members") or []
    return {
        "programme": row["programme"], "region": int(row["region_code"][:4]),
        "enrolment": ENROLMENTS.index(row["enrolment_status"]),
        "registered_on": ((row["registered_on"] or date(9999, 12, 31)) - date(2000, 1, 1)).days,
        "welfare": {name: None if welfare.get(name) is None else float(welfare[name]) for name in INDICATORS},
        "members": [(date.fromisoformat(m["birth_date"]), m.get("sex"), bool(m.get("in_school")),
                     bool(m.get("pregnant")), bool(m.get("disability"))) for m in members]}


def stored(row) -> dict:
    state = State.unpack(row["fixed"], row["members"])
    return {
        "programme": row["programme"], "region": int(state.region[0]), "enrolment": int(state.enrolment[0]),
        "registered_on": int(state.registered_on[0]),
        "welfare": {name: None if np.isnan(v[0]) else float(v[0]) for name, v in state.welfare.items()},
        "members": [(b.astype(object), SEXES[s], bool(i), bool(p), bool(d)) for b, s, i, p, d in zip(
            state.birth_date, state.sex, state.in_school, state.pregnant, state.disability)]}


async def assert_state_follows(pool) -> int:
    wide = {r["household_id"]: expected(r) for r in await pool.fetch("SELECT * FROM households")}
    narrow = {r["household_id"]: stored(r) for r in await pool.fetch("SELECT * FROM household_state")}
    assert narrow == wide
    return len(wide)


async def test_the_narrow_state_follows_every_kind_of_input_write(eligibility):
    pool, apply = eligibility
    family, other = Family(), Family(programme="jscm")
    head, mother = member("head", "1980-01-01"), member("spouse", "1985-01-01", sex="F")
    pupil = member("child", "2014-01-01", in_school=True)
    partial = {"earth_or_bamboo_floor": True, "no_electricity": False, "floor_area_per_person_m2": 7.25}
    await apply(family.registered([head, mother, pupil]), other.registered([member("head", "1990-02-03")], partial))
    assert await assert_state_follows(pool) == 2
    baby = member("child", "2026-02-01", sex="F")
    steps = [
        family.updated(welfare={**POOR, "no_electricity": True, "installed_power_va": None}),
        family.added(baby),
        family.member_updated({**pupil, "disability": True}, "disability"),
        family.head_changed(mother["member_id"], head["member_id"], [(head["member_id"], "spouse")]),
        family.enrolment("active", "candidate"),
        family.visit(antenatal=[mother["member_id"]], school=[(pupil["member_id"], False)]),
        family.escalated(pupil["member_id"], date(2026, 3, 31)),
        family.verified(date(2026, 4, 30), [(pupil["member_id"], "school", "compliant")]),
        other.moved_in(family, pupil["member_id"], member("child", "2014-01-01", in_school=True)),
        family.split(uuid.uuid4(), [baby["member_id"]]),
        family.ended(head["member_id"]),
        family.enrolment("exited", "active", "paksa"),
    ]
    for event in steps:
        await apply(event)
        await assert_state_follows(pool)
    # writes of other columns leave it as it was; a wide row written or removed directly is followed too
    await pool.execute("UPDATE households SET next_review_on = DATE '2030-01-01', updated_at = now()")
    await assert_state_follows(pool)
    direct = uuid.uuid4()
    await pool.execute(
        "INSERT INTO households (household_id, programme, region_code, inputs, enrolment_status, registered_on)"
        " VALUES ($1, 'jamsosratu', '3602011001', $2, 'candidate', DATE '2026-01-05')", direct,
        json.dumps({"household_id": str(direct), "welfare": {"head_low_income": True}, "members": [
            {"member_id": None, "sex": "F", "birth_date": "1950-07-01", "relation": "head", "in_school": False,
             "pregnant": False, "disability": True}]}))
    assert await assert_state_follows(pool) == 3
    await pool.execute("UPDATE households SET region_code = '3603011001', enrolment_status = NULL"
                       " WHERE household_id = $1", direct)
    await assert_state_follows(pool)
    await pool.execute("DELETE FROM households WHERE household_id = $1", direct)
    assert await assert_state_follows(pool) == 2
