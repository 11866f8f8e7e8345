"""Inputs kept current from events on the real PostgreSQL: each kind of input event reassesses its household
(with the event as the cause), a redelivered or no-op event emits nothing, monitoring's word joins a
registration read later, an escalation becomes a proposed paksa exit, and the passing of time reassesses
the households due."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import ejsika_eligibility
from ejsika_contracts import ELIGIBILITY
from ejsika_eligibility import decisions, review
from ejsika_eligibility.inputs import InputMetrics, Inputs
from ejsika_registry.domain.enrolment import proposed_exit
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.unit_of_work import UnitOfWork

from ..family_events import POOR, Family, member

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"
RICH = {name: (False if isinstance(value, bool) else value) for name, value in POOR.items()} | {
    "floor_area_per_person_m2": 30.0, "installed_power_va": 2200}


class Eligibility:
    """One migrated schema and the input consumers, batches applied as the consumer does."""

    def __init__(self, name: str, pool) -> None:
        self.name, self.pool = name, pool
        self.registry = CollectorRegistry()
        self.inputs = Inputs(InputMetrics(self.registry))
        self.reassessed: list[tuple[uuid.UUID, uuid.UUID | None]] = []

    async def apply(self, *events) -> list:
        """One batch; answers the events emitted."""
        async with self.pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn)
            await self.inputs.apply(uow, list(events))
            await Outbox(self.name).add(conn, uow.events)
        return uow.events

    async def inputs_of(self, household_id):
        return await self.pool.fetchrow("SELECT * FROM households WHERE household_id = $1", household_id)


@pytest.fixture
async def eligibility(migrated_schema, monkeypatch):
    name, pool = await migrated_schema("eligibility", MIGRATIONS)
    made = Eligibility(name, pool)
    real = decisions.reassess

    async def spy(uow, causes, today=None, review=True, written=None):
        made.reassessed.extend((h, c.id if c else None) for h, c in causes)
        return await real(uow, causes, today=today, review=review, written=written)

    monkeypatch.setattr(decisions, "reassess", spy)
    return made


def assessed_of(events, household_id):
    return [e for e in events if e.type == "eligibility.assessed" and e.data.household_id == household_id]


async def test_each_kind_of_input_event_reassesses_its_household_with_the_event_as_its_cause(eligibility):
    family = Family(programme="jscm")
    head, mother = member("head", "1980-01-01"), member("spouse", "1985-01-01", sex="F")
    pupil = member("child", "2014-01-01", in_school=True)
    registered = family.registered([head, mother, pupil])
    (first,) = await eligibility.apply(registered)
    assert first.causation_id == registered.id and first.data.status == "eligible"
    assert first.data.components == ["school_sd"]
    baby = member("child", "2026-02-01", sex="F")
    steps = [
        family.updated(welfare={**POOR, "no_electricity": True}),
        family.added(baby),
        family.member_updated({**pupil, "disability": True}, "disability"),
        family.head_changed(mother["member_id"], head["member_id"], [(head["member_id"], "spouse")]),
        family.enrolment("active", "candidate"),
        family.visit(antenatal=[mother["member_id"]]),
        family.escalated(pupil["member_id"], date(2026, 3, 31)),
        family.verified(date(2026, 4, 30), [(pupil["member_id"], "school", "compliant")]),
        family.ended(head["member_id"]),
    ]
    for event in steps:
        eligibility.reassessed.clear()
        await eligibility.apply(event)
        assert eligibility.reassessed == [(family.id, event.id)], event.type
    stored = await eligibility.inputs_of(family.id)
    assert stored["version"] == family.version and stored["enrolment_status"] == "active"
    assert stored["registered_on"] == date(2026, 3, 2) and stored["next_review_on"] is not None
    assert stored["compliance"] is not None


async def test_what_the_family_is_told_changes_are_announced_and_a_redelivery_or_a_no_op_emits_nothing(eligibility):
    family = Family()
    pupil = member("child", "2015-06-01", in_school=True)
    registered = family.registered([member("head"), pupil])
    (assessed,) = await eligibility.apply(registered)
    eligibility.reassessed.clear()
    assert await eligibility.apply(registered) == [] and eligibility.reassessed == []  # replayed: the order guard
    moved_pendamping = family.updated(pendamping_id="pendamping-2")
    assert await eligibility.apply(moved_pendamping) == [] and eligibility.reassessed == []
    assert await eligibility.pool.fetchval("SELECT pendamping_id FROM household_scope WHERE household_id = $1",
                                           family.id) == "pendamping-2"
    # the same visit as the registry already says: reassessed, nothing new to tell
    assert await eligibility.apply(family.visit(school=[(pupil["member_id"], True)])) == []
    assert eligibility.reassessed == []  # the inputs did not even change
    prosperous = family.updated(welfare=RICH)
    (richer,) = await eligibility.apply(prosperous)
    assert richer.causation_id == prosperous.id and richer.data.status == "not_eligible"
    assert richer.correlation_id == prosperous.correlation_id
    assert await eligibility.apply(prosperous) == []
    count = await eligibility.pool.fetchval("SELECT count(*) FROM assessments WHERE household_id = $1", family.id)
    assert count == 2


async def test_a_move_reassesses_both_households_and_a_split_the_one_left(eligibility):
    left, joined = Family(), Family()
    head, pupil = member("head"), member("child", "2015-06-01", in_school=True)
    await eligibility.apply(left.registered([head, pupil]), joined.registered([member("head", "1990-01-01")]))
    eligibility.reassessed.clear()
    moved = joined.moved_in(left, pupil["member_id"], member("child", "2015-06-01", in_school=True))
    emitted = await eligibility.apply(moved)
    assert sorted(eligibility.reassessed, key=str) == sorted([(left.id, moved.id), (joined.id, moved.id)], key=str)
    assert assessed_of(emitted, joined.id)[0].data.components and not assessed_of(emitted, left.id)[0].data.components
    left_inputs = await eligibility.inputs_of(left.id)
    assert pupil["member_id"] not in left_inputs["inputs"]


async def test_enrolment_steps_are_kept_once_each(eligibility):
    family = Family()
    await eligibility.apply(family.registered([member("head")]))
    steps = [family.enrolment("active", "candidate"), family.enrolment("exited", "active", "paksa")]
    await eligibility.apply(*steps)
    await eligibility.apply(*steps)
    rows = await eligibility.pool.fetch("SELECT event_id, status, previous_status, exit_kind, region_code"
                                        " FROM enrolment_steps WHERE household_id = $1 ORDER BY version", family.id)
    assert [(r["event_id"], r["status"], r["exit_kind"]) for r in rows] == [
        (steps[0].id, "active", None), (steps[1].id, "exited", "paksa")]
    assert (await eligibility.inputs_of(family.id))["enrolment_status"] == "exited"


async def test_monitoring_read_before_the_registration_joins_it_and_registry_events_of_an_unknown_family_are_counted(
        eligibility):
    family = Family()
    mother = member("spouse", "1990-01-01", sex="F")
    registered = family.registered([member("head"), mother])
    visit = family.visit(antenatal=[mother["member_id"]])
    assert await eligibility.apply(visit) == [] and await eligibility.inputs_of(family.id) is None
    (assessed,) = await eligibility.apply(registered)
    assert "pregnant" in assessed.data.components

    stranger = Family()
    stranger.version = 4  # registered before this service read the topic
    assert await eligibility.apply(stranger.updated(region_code="3672021002")) == []
    assert await eligibility.pool.fetchval("SELECT count(*) FROM household_facts WHERE household_id = $1",
                                           stranger.id) == 0
    assert eligibility.registry.get_sample_value("ejsika_eligibility_unregistered_events_total",
                                                 {"event_type": "household.updated"}) == 1


async def test_an_escalation_proposes_a_paksa_exit_the_registry_recommends_and_compliance_withdraws_it(eligibility):
    family = Family()
    pupil = member("child", "2014-06-01", in_school=True)
    await eligibility.apply(family.registered([member("head"), pupil]), family.enrolment("active", "candidate"))
    escalated = family.escalated(pupil["member_id"], date(2026, 3, 31))
    (proposal,) = await eligibility.apply(escalated)
    assert proposal.causation_id == escalated.id
    assert proposal.data.proposed_exit.kind == "paksa" and "school_dropout_risk" in proposal.data.proposed_exit.reason
    # what the registry makes of it: an exit recommended, with the decision's reason
    assert proposed_exit(ELIGIBILITY.parse(proposal.to_bytes()).data) == ("paksa", proposal.data.proposed_exit.reason)
    (withdrawn,) = await eligibility.apply(family.verified(date(2026, 4, 30),
                                                          [(pupil["member_id"], "school", "compliant")]))
    assert withdrawn.data.proposed_exit is None
    assert proposed_exit(withdrawn.data) == (None, None)


async def test_ages_are_taken_on_the_jakarta_day_of_the_event(eligibility):
    """18:30 UTC on 1 January is 2 January in Jakarta: a pupil born on 2 January 2019 is 7, in SD."""
    family = Family()
    family.clock = datetime(2026, 1, 1, 18, 29, tzinfo=timezone.utc)
    registered = family.registered([member("head"), member("child", "2019-01-02", in_school=True)])
    (assessed,) = await eligibility.apply(registered)
    assert assessed.data.components == ["school_sd"]


async def test_the_passing_of_time_reassesses_the_households_due_and_only_them(eligibility):
    family, other = Family(), Family()
    # turns 7 on 1 June 2026: from early childhood to SD
    await eligibility.apply(family.registered([member("head"), member("child", "2019-06-01", in_school=True)]),
                            other.registered([member("head"), member("child", "2012-01-01", in_school=True)]))
    due = await eligibility.pool.fetchval("SELECT next_review_on FROM households WHERE household_id = $1", family.id)
    assert due == date(2026, 6, 1)
    outbox = Outbox(eligibility.name)
    eligibility.reassessed.clear()
    assert await review.review_due(eligibility.pool, outbox, today=due - timedelta(days=1)) == 0
    assert await review.review_due(eligibility.pool, outbox, today=due, batch=1) == 1
    assert eligibility.reassessed == [(family.id, None)]
    rows = await eligibility.pool.fetch("SELECT status, components, assessed_on FROM decisions WHERE household_id = $1",
                                        family.id)
    assert [(r["components"], r["assessed_on"]) for r in rows] == [(["school_sd"], due)]
    assert await eligibility.pool.fetchval("SELECT next_review_on FROM households WHERE household_id = $1",
                                           family.id) > due
    assert await review.review_due(eligibility.pool, outbox, today=due) == 0  # done for the day
    announced = await eligibility.pool.fetchval("SELECT count(*) FROM outbox WHERE topic = $1 AND key = $2",
                                                ELIGIBILITY.name, str(family.id).encode())
    assert announced == 2  # its registration's decision, and the one of its birthday


def test_the_daily_review_runs_a_little_after_midnight_in_jakarta():
    # 16:00 UTC is 23:00 WIB: the next run is at 00:05 WIB, 65 minutes later
    assert review.seconds_until_next_run(datetime(2026, 3, 1, 16, 0, tzinfo=timezone.utc)) == 65 * 60
    assert review.seconds_until_next_run(datetime(2026, 3, 1, 17, 5, tzinfo=timezone.utc)) == 24 * 3600
