"""The run towards mandiri on the real PostgreSQL: counted in the registry's welfare observations, kept
by visits and by the daily review, started again by a rule change."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

import ejsika_eligibility
from ejsika_eligibility import review, rule_change
from ejsika_eligibility.domain.rules import DEFAULTS
from ejsika_eligibility.inputs import Inputs
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.unit_of_work import UnitOfWork

from ..family_events import POOR, Family, member

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"
RICH = {name: (False if isinstance(value, bool) else value) for name, value in POOR.items()} | {
    "floor_area_per_person_m2": 30.0, "installed_power_va": 2200}  # desil 10


async def apply(schema: str, pool, *events) -> None:
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn)
        await Inputs().apply(uow, list(events))
        await Outbox(schema).add(conn, uow.events)


async def decision(pool, household_id):
    return await pool.fetchrow(
        "SELECT rule_version, desil, prior_high, welfare_version, graduation, proposed_exit, assessed_on"
        " FROM decisions WHERE household_id = $1 AND active_rule", household_id)


async def test_visits_and_the_daily_review_keep_the_run_welfare_surveys_move_it(migrated_schema):
    schema, pool = await migrated_schema("eligibility", MIGRATIONS)
    family = Family()
    # turns 7 on 1 June 2026: from early childhood to SD, a review driven by the clock
    pupil = member("child", "2019-06-01", in_school=True)
    await apply(schema, pool, family.registered([member("head"), pupil], welfare=RICH),
                family.enrolment("candidate", None), family.enrolment("active", "candidate"))
    first = await decision(pool, family.id)
    assert (first["desil"], first["prior_high"], first["welfare_version"], first["graduation"]) == (10, 0, 1, None)
    # visits, each its own batch, change the inputs but observe no welfare: the run stays
    for enrolled in (False, True, False):
        await apply(schema, pool, family.visit(school=[(pupil["member_id"], enrolled)]))
    assert (await decision(pool, family.id))["prior_high"] == 0
    assert await pool.fetchval("SELECT count(*) FROM assessments WHERE household_id = $1", family.id) == 5
    # two more surveys, a visit between them: three prosperous observations in a row
    surveyed = family.updated(welfare={**RICH, "installed_power_va": 1300})
    await apply(schema, pool, surveyed)
    await apply(schema, pool, family.visit(school=[(pupil["member_id"], True)]))
    await apply(schema, pool, family.updated(welfare=RICH))
    third = await decision(pool, family.id)
    assert (third["prior_high"], third["graduation"], third["proposed_exit"]) == (2, "mandiri", "mandiri")
    assert third["welfare_version"] == family.version
    # the clock, not an event: the pupil turns 7; the decision is taken again on the same observation
    due = await pool.fetchval("SELECT next_review_on FROM households WHERE household_id = $1", family.id)
    assert await review.review_due(pool, Outbox(schema), today=due) == 1
    reviewed = await decision(pool, family.id)
    assert reviewed["assessed_on"] == due and reviewed["assessed_on"] != third["assessed_on"]
    assert (reviewed["prior_high"], reviewed["welfare_version"], reviewed["graduation"]) == (
        2, third["welfare_version"], "mandiri")
    # a poor survey breaks the run; the next prosperous one starts it again
    await apply(schema, pool, family.updated(welfare=POOR))
    await apply(schema, pool, family.updated(welfare=RICH))
    again = await decision(pool, family.id)
    assert (again["desil"], again["prior_high"], again["graduation"]) == (10, 0, None)


async def test_a_rule_change_starts_the_run_again_from_the_observation_at_hand(migrated_schema):
    schema, pool = await migrated_schema("eligibility", MIGRATIONS)
    family = Family()
    await apply(schema, pool, family.registered([member("head"), member("child", "2023-01-01")], welfare=RICH),
                family.enrolment("candidate", None), family.enrolment("active", "candidate"),
                family.updated(welfare=RICH), family.updated(welfare=RICH))
    before = await decision(pool, family.id)
    assert (before["rule_version"], before["prior_high"], before["graduation"]) == (1, 2, "mandiri")
    document = json.loads((DEFAULTS / "jamsosratu.v1.json").read_text()) | {"version": 2, "title": "v2"}
    await pool.execute("INSERT INTO rule_sets (programme, version, document, loaded_by) VALUES ($1, 2, $2, 'test')",
                       "jamsosratu", json.dumps(document))
    job = await rule_change.activate(pool, "jamsosratu", 2, "test")
    assert await rule_change.run(pool, Outbox(schema), job, today=before["assessed_on"] + timedelta(days=1))
    after = await decision(pool, family.id)
    assert (after["rule_version"], after["prior_high"], after["welfare_version"], after["graduation"]) == (
        2, 0, before["welfare_version"], None)
    # the run under version 2 counts the surveys from here
    await apply(schema, pool, family.updated(welfare=RICH))
    await apply(schema, pool, family.visit())
    await apply(schema, pool, family.updated(welfare=RICH))
    assert (await decision(pool, family.id))["graduation"] == "mandiri"
