"""The registry applies the household changes a pendamping's visit reports (visit.recorded), on the real
PostgreSQL: by the shipped rules they wait for a supervisor as proposals with the visit as their source;
by rules that let visits apply at once they apply with the visit's event as their cause (a welfare
change, a newborn without a NIK yet, a member who died); what the registry refuses is kept with its
reason and never raised; a visit applies once however often it arrives; a visit arriving late does not
overwrite what a later visit observed.

The handler is called as the consumer calls it, with events read back from their bytes as the broker
hands them over (every indicator present, the unobserved ones null).
"""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from ejsika_contracts import (
    VISIT, Birth, HouseholdCondition, MemberLeft, Observations, VisitRecorded, VisitRecordedData, WelfareIndicators,
)
from ejsika_registry import households, proposals, visits
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import unit_of_work

from .conftest import NIK_KEY

pytestmark = pytest.mark.infra

PENDAMPING = "pendamping-visits"
# Rules under which a visit's changes apply at once, while a pendamping's own edits in the app still
# wait: the rules name roles only, and a visit reaches the household in none (its source is "visit").
VISITS_AT_ONCE = {"applies_at_once": ["operator", "supervisor"], "rules": [
    {"kind": kind, "roles": ["pendamping"], "approver": "supervisor"}
    for kind in ("update", "member_added", "member_ended", "member_moved")]}
_serials = itertools.count(1)


@pytest.fixture
async def registry(registry):
    """The registry of conftest.py, deciding by the shipped rules unless a test loads others."""
    proposals.use(None)
    yield registry
    proposals.use(None)


@pytest.fixture
def visits_at_once(registry, tmp_path):
    path = tmp_path / "approval.json"
    path.write_text(json.dumps(VISITS_AT_ONCE))
    proposals.use(path)


def person(relation: str, sex: str, born: date) -> dict:
    day = born.day + (40 if sex == "F" else 0)
    nik = f"367201{day:02d}{born.month:02d}{born.year % 100:02d}{next(_serials):04d}"
    return {"nik": nik, "name": "Warga", "sex": sex, "birth_date": born.isoformat(), "relation": relation}


async def register(registry) -> dict:
    """A household of three (a head, his wife, a grown daughter) in the pendamping's caseload."""
    body = registry.families.registration(programme="jscm")
    body.update(region_code="3672011001", members=[
        person("head", "M", date(1980, 3, 12)), person("spouse", "F", date(1983, 7, 2)),
        person("child", "F", date(2004, 5, 1))])
    (household,) = await registry.register_bodies([body], PENDAMPING)
    return household


def member(household: dict, relation: str) -> str:
    return next(member_id for member_id, m in household["members"].items() if m["relation"] == relation)


def visit(household_id: UUID, *, welfare: dict | None = None, births: list[Birth] = (), left: list[MemberLeft] = (),
          visit_id: UUID | None = None, captured_at: datetime | None = None) -> VisitRecorded:
    """A visit.recorded as monitoring publishes it, read back from its bytes as the consumer reads it."""
    now = datetime.now(timezone.utc)
    data = VisitRecordedData(
        household_id=household_id, visit_id=visit_id or uuid4(), pendamping_id=PENDAMPING,
        captured_at=captured_at or now - timedelta(hours=2), received_at=now,
        observations=Observations(condition=HouseholdCondition(
            welfare=WelfareIndicators(**welfare) if welfare is not None else None,
            births=list(births), left=list(left))))
    event = VisitRecorded(source="monitoring", subject=str(household_id), correlation_id=uuid4(), data=data)
    return VISIT.parse(event.to_bytes())


async def apply(registry, *events: VisitRecorded) -> None:
    async with unit_of_work(registry.pool, registry.service.outbox) as uow:
        await visits.handler(NIK_KEY)(uow, list(events))


async def applications(registry, visit_id: UUID) -> dict[str, dict]:
    rows = await registry.pool.fetch("SELECT * FROM visit_applications WHERE visit_id = $1", visit_id)
    return {r["change"]: dict(r) for r in rows}


def flipped(household: dict, indicator: str = "no_electricity") -> dict:
    return {indicator: not household["welfare"].get(indicator, False)}


async def test_a_visit_s_changes_wait_for_a_supervisor_as_proposals_from_the_visit(registry):
    household = await register(registry)
    daughter = member(household, "child")
    today = programme_today()
    event = visit(household["id"], welfare=flipped(household),
                  births=[Birth(name="Bayi Visit", sex="M", birth_date=today)],
                  left=[MemberLeft(member_id=UUID(daughter), kind="married_out", effective_date=today)])

    await apply(registry, event)

    now = await households.current_state(registry.pool, household["id"])
    assert (now["welfare"], set(now["members"])) == (household["welfare"], set(household["members"]))
    waiting = await registry.pool.fetch("SELECT * FROM proposals ORDER BY created_at, kind")
    assert sorted((p["kind"], p["status"], p["source"], p["proposed_by"], p["approver"]) for p in waiting) == [
        (kind, "pending", "visit", PENDAMPING, "supervisor") for kind in ("member_added", "member_ended", "update")]
    assert {p["correlation_id"] for p in waiting} == {event.correlation_id}
    assert all(p["request_id"] is not None for p in waiting)
    (update,) = [p for p in waiting if p["kind"] == "update"]
    assert json.loads(update["payload"]) == {"welfare": flipped(household)}  # the indicators observed, no nulls

    rows = await applications(registry, event.data.visit_id)
    assert {key: (r["outcome"], r["kind"]) for key, r in rows.items()} == {
        "welfare": ("proposed", "update"), "births/0": ("proposed", "member_added"),
        "left/0": ("proposed", "member_ended")}
    assert {r["proposal_id"] for r in rows.values()} == {p["id"] for p in waiting}
    history = await households.full_history(registry.pool, household["id"])
    assert [(h["change"], h["source"], h["actor"]) for h in history[1:]] == [
        ("proposal_submitted", "visit", PENDAMPING)] * 3
    assert [e["type"] for e in await registry.outbox()] == ["household.registered"]  # nothing applied
    recorded = await registry.pool.fetchrow(
        "SELECT subject, role, action, channel, fields, correlation_id FROM processing_records"
        " WHERE household_id = $1 AND purpose = $2", household["id"], visits.PURPOSE)
    assert (recorded["subject"], recorded["role"], recorded["action"], recorded["channel"]) == (
        "registry", "service", "write", "event visit.recorded")
    assert "welfare" in recorded["fields"] and "members.name" in recorded["fields"]
    assert recorded["correlation_id"] == event.correlation_id


async def test_where_visits_apply_at_once_the_change_names_the_visit_as_source_and_cause(registry, visits_at_once):
    household = await register(registry)
    event = visit(household["id"], welfare=flipped(household))

    await apply(registry, event)

    now = await households.current_state(registry.pool, household["id"])
    assert now["welfare"] == {**household["welfare"], **flipped(household)}  # unobserved indicators kept
    assert now["version"] == 2
    *_, updated = await households.full_history(registry.pool, household["id"])
    assert (updated["change"], updated["source"], updated["actor"], updated["cause_id"]) == (
        "updated", "visit", PENDAMPING, event.id)
    assert set(updated["changes"]) == {"welfare"}
    assert str(event.data.visit_id) in updated["reason"]
    *_, announced = await registry.outbox()
    assert (announced["type"], announced["causation_id"], announced["correlation_id"]) == (
        "household.updated", str(event.id), str(event.correlation_id))
    assert (await applications(registry, event.data.visit_id))["welfare"]["outcome"] == "applied"
    assert await registry.pool.fetchval("SELECT count(*) FROM proposals") == 0

    # the same observation again: nothing to change, nothing proposed
    again = visit(household["id"], welfare=flipped(household))
    await apply(registry, again)
    assert (await applications(registry, again.data.visit_id))["welfare"]["outcome"] == "unchanged"
    assert (await households.current_state(registry.pool, household["id"]))["version"] == 2


async def test_a_birth_adds_a_child_whose_nik_is_pending(registry, visits_at_once):
    household = await register(registry)
    born = programme_today() - timedelta(days=3)
    event = visit(household["id"], births=[Birth(name="Siti Bayi", sex="F", birth_date=born)])

    await apply(registry, event)

    now = await households.current_state(registry.pool, household["id"])
    (baby,) = [m for member_id, m in now["members"].items() if member_id not in household["members"]]
    assert (baby["name"], baby["sex"], baby["birth_date"], baby["relation"], baby["nik_status"], baby["nik"]) == (
        "Siti Bayi", "F", born.isoformat(), "child", "pending", None)
    *_, added = await registry.outbox()
    assert (added["type"], added["data"]["reason"], added["data"]["effective_date"], added["causation_id"]) == (
        "member.added", "birth", born.isoformat(), str(event.id))
    assert added["data"]["member"]["member_id"] == str(baby["member_id"])


async def test_a_member_who_died_is_ended(registry, visits_at_once):
    household = await register(registry)
    wife = member(household, "spouse")
    died = programme_today() - timedelta(days=10)
    event = visit(household["id"], left=[MemberLeft(member_id=UUID(wife), kind="died", effective_date=died)])

    await apply(registry, event)

    assert wife not in (await households.current_state(registry.pool, household["id"]))["members"]
    ended = await registry.pool.fetchrow("SELECT end_kind, ended_on FROM members WHERE member_id = $1", UUID(wife))
    assert (ended["end_kind"], ended["ended_on"]) == ("died", died)
    *_, announced = await registry.outbox()
    data = announced["data"]
    assert (announced["type"], data["member_id"], data["kind"], announced["causation_id"]) == (
        "member.ended", wife, "died", str(event.id))
    *_, row = await households.full_history(registry.pool, household["id"])
    assert (row["change"], row["source"], row["cause_id"]) == ("member_ended", "visit", event.id)


async def test_refused_changes_are_kept_with_their_reason_and_the_rest_of_the_visit_applies(registry, visits_at_once):
    household = await register(registry)
    daughter, head = member(household, "child"), member(household, "head")
    today = programme_today()
    first = visit(household["id"],
                  left=[MemberLeft(member_id=UUID(daughter), kind="married_out", effective_date=today)])
    await apply(registry, first)

    # a later visit reports her leaving again (she is gone), the head leaving (a head change first),
    # a birth tomorrow, and a welfare change that is fine
    event = visit(household["id"], welfare=flipped(household, "no_private_toilet"),
                  births=[Birth(name="Belum Lahir", sex="M", birth_date=today + timedelta(days=1))],
                  left=[MemberLeft(member_id=UUID(daughter), kind="moved_out", effective_date=today),
                        MemberLeft(member_id=UUID(head), kind="moved_out", effective_date=today)])
    unknown = visit(uuid4(), welfare={"no_electricity": True})
    await apply(registry, event, unknown)  # does not raise

    rows = await applications(registry, event.data.visit_id)
    assert {key: (r["outcome"], r["reason"]) for key, r in rows.items()} == {
        "welfare": ("applied", None),
        "births/0": ("refused", "member.birth_date: birth_date; effective_date: effective_date"),
        "left/0": ("refused", "no_such_member"),
        "left/1": ("refused", "member_id: head_ends")}
    assert (await applications(registry, unknown.data.visit_id))["welfare"]["outcome"] == "refused"
    assert (await applications(registry, unknown.data.visit_id))["welfare"]["reason"] == "no_such_household"
    now = await households.current_state(registry.pool, household["id"])
    assert now["welfare"]["no_private_toilet"] == flipped(household, "no_private_toilet")["no_private_toilet"]
    assert set(now["members"]) == set(household["members"]) - {daughter}
    assert now["version"] == 3  # her end, the welfare change: a refusal takes no version
    assert [e["type"] for e in await registry.outbox()] == ["household.registered", "member.ended", "household.updated"]
    assert await registry.pool.fetchval("SELECT count(*) FROM processing_records WHERE household_id = $1",
                                        unknown.data.household_id) == 0


async def test_a_visit_applies_once_however_often_it_arrives(registry, visits_at_once):
    household = await register(registry)
    born = programme_today()
    event = visit(household["id"], welfare=flipped(household), births=[Birth(name="Bayi", sex="M", birth_date=born)])
    resent = VISIT.parse(event.model_copy(update={"id": uuid4()}).to_bytes())  # the app uploaded it again

    await apply(registry, event)
    await apply(registry, event, resent)

    now = await households.current_state(registry.pool, household["id"])
    assert len(now["members"]) == len(household["members"]) + 1 and now["version"] == 3
    assert [e["type"] for e in await registry.outbox()] == ["household.registered", "household.updated",
                                                            "member.added"]
    assert set(await applications(registry, event.data.visit_id)) == {"welfare", "births/0"}

    # the same birth recorded as another visit (a new visit_id) is no second child
    other = visit(household["id"], births=[Birth(name=" bayi ", sex="M", birth_date=born)])
    await apply(registry, other)
    assert (await applications(registry, other.data.visit_id))["births/0"]["reason"] == "born_member_already"
    assert len((await households.current_state(registry.pool, household["id"]))["members"]) == len(now["members"])


async def test_a_visit_resent_proposes_once(registry):
    household = await register(registry)
    daughter = member(household, "child")
    event = visit(household["id"], welfare=flipped(household), left=[
        MemberLeft(member_id=UUID(daughter), kind="married_out", effective_date=programme_today())])

    await apply(registry, event)
    await apply(registry, VISIT.parse(event.model_copy(update={"id": uuid4()}).to_bytes()))
    # another visit reporting the same departure while it waits for its supervisor
    other = visit(household["id"], left=[
        MemberLeft(member_id=UUID(daughter), kind="married_out", effective_date=programme_today())])
    await apply(registry, other)

    assert await registry.pool.fetchval("SELECT count(*) FROM proposals") == 2
    assert (await households.current_state(registry.pool, household["id"]))["version"] == 3  # two proposals
    assert (await applications(registry, other.data.visit_id))["left/0"]["reason"] == "end_proposed_already"


async def test_a_visit_arriving_late_does_not_overwrite_what_a_later_visit_observed(registry, visits_at_once):
    household = await register(registry)
    now = datetime.now(timezone.utc)
    later = visit(household["id"], welfare={"no_electricity": False}, captured_at=now - timedelta(days=1))
    toilet = flipped(household, "no_private_toilet")
    earlier = visit(household["id"], welfare={"no_electricity": True, **toilet}, captured_at=now - timedelta(days=5))

    await apply(registry, later)
    await apply(registry, earlier)  # uploaded days late, from a phone that was offline

    welfare = (await households.current_state(registry.pool, household["id"]))["welfare"]
    assert (welfare["no_electricity"], welfare["no_private_toilet"]) == (False, toilet["no_private_toilet"])
    row = (await applications(registry, earlier.data.visit_id))["welfare"]
    assert (row["outcome"], row["reason"], row["fields"]) == (
        "applied", "outdated by a later visit: welfare.no_electricity", ["welfare.no_private_toilet"])
