"""Visits uploaded by the caseworker app, on the real PostgreSQL: batches with bad visits, the same sync
uploaded twice, out-of-order arrival, the caseload rule, and what the visit's event carries."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

import ejsika_monitoring
from ejsika_contracts import (
    VISIT,
    EnrolmentChanged,
    EnrolmentChangedData,
    HouseholdRegisteredDataV2,
    HouseholdRegisteredV2,
    VisitRecorded,
)
from ejsika_monitoring import visits_api
from ejsika_monitoring.recorded_visits import VISIT_RECORD_FIELDS
from ejsika_monitoring.schedules import mark_overdue, on_enrolment_changed, on_registered
from ejsika_runtime.programme_time import programme_date
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
PENDAMPING = "pendamping-1"
NOTES = "Ibu R. batuk lama, rujuk ke puskesmas"  # health data: stored, never published
BATCH_MAX = 20
NOW = datetime.now(timezone.utc)
WIB = timezone(timedelta(hours=7))


class Monitoring:
    def __init__(self, service: Service, idp: LocalIdentity) -> None:
        self.service, self.idp = service, idp
        self.app = service.app()

    @property
    def pool(self):
        return self.service.pool

    def client(self, role: str = "pendamping", sub: str = PENDAMPING, **claims) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://monitoring",
                                 headers=self.idp.headers(role, sub=sub, **claims))

    async def household(self, pendamping: str | None = PENDAMPING, region: str = "3672011001",
                        registered: datetime = NOW - timedelta(days=30)) -> str:
        """A household monitoring follows, from the registry's event, in `pendamping`'s caseload."""
        household_id = uuid.uuid4()
        data = HouseholdRegisteredDataV2.model_validate({
            "household_id": household_id, "programme": "jscm", "region_code": region,
            "kk_number": "3672010101200001", "address": "x", "welfare": {}, "pendamping_id": pendamping,
            "members": [{"member_id": uuid.uuid4(), "nik": "3672011203800001", "name": "A", "sex": "M",
                         "birth_date": "1980-03-12", "relation": "head"}],
        })
        event = HouseholdRegisteredV2(source="registry", subject=str(household_id), correlation_id=uuid.uuid4(),
                                      time=registered, data=data)
        async with unit_of_work(self.pool, self.service.outbox) as uow:
            await on_registered(uow, [event])
        return str(household_id)

    async def count(self) -> tuple[int, int]:
        """Visit records stored, visit.recorded events in the outbox."""
        rows = await self.pool.fetchval("SELECT count(*) FROM visit_records")
        return rows, len(await self.events())

    async def events(self) -> list[tuple[bytes, dict]]:
        rows = await self.pool.fetch("SELECT key, value FROM outbox WHERE topic = 'ejsika.visit' ORDER BY id")
        found = [(bytes(r["key"]), json.loads(bytes(r["value"]))) for r in rows]
        return [(k, e) for k, e in found if e["type"] == "visit.recorded"]


@pytest.fixture
async def monitoring(migrated_schema) -> Monitoring:
    _, pool = await migrated_schema("monitoring", MIGRATIONS)
    idp = LocalIdentity()
    service = Service("monitoring", Settings(auth_issuer=ISSUER, write_rate_per_s=1000, write_burst=1000),
                      MIGRATIONS)
    idp.install(service.access)
    service._pool = pool  # the routes run on the test's schema; the service itself is never started
    service.router.include_router(visits_api.routes(service, batch_max=BATCH_MAX, clock_skew_s=300))
    return Monitoring(service, idp)


def visit(household_id: str, captured_at: datetime | None = None, **changes) -> dict:
    member = str(uuid.uuid4())
    return {"visit_id": str(uuid.uuid4()), "household_id": household_id,
            "captured_at": (captured_at or NOW - timedelta(days=1)).astimezone(WIB).isoformat(),
            "location": {"latitude": -6.0172, "longitude": 106.0539, "accuracy_m": 12},
            "observations": {"school": [{"member_id": member, "enrolled": True, "days_present": 18,
                                         "school_days": 20}]},
            "notes": NOTES, **changes}


async def test_a_batch_with_bad_visits_records_the_good_ones_and_answers_each(monitoring):
    own, other = await monitoring.household(), await monitoring.household(pendamping="pendamping-2")
    recent = await monitoring.household(registered=NOW - timedelta(hours=1))
    visits = [
        visit(own),
        visit(own, NOW + timedelta(hours=2)),  # the phone's clock is hours ahead
        visit(str(uuid.uuid4())),  # monitoring does not know the household (yet)
        visit(other),  # another pendamping's family
        visit(recent, NOW - timedelta(days=2)),  # before the family was registered
        {**visit(own), "captured_at": "2026-03-09 10:15"},  # no offset: breaks the schema
        visit(recent, NOW - timedelta(minutes=5)),
    ]
    async with monitoring.client() as http:
        answer = await http.post("/visits/batch", json={"visits": visits})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["result"] for r in results] == ["recorded", "rejected", "rejected", "rejected", "rejected", "invalid",
                                              "recorded"]
    assert [r["visit_id"] for r in results] == [v["visit_id"] for v in visits]
    assert [[(e["field"], e["rule"]) for e in r["errors"] or []] for r in results[1:6]] == [
        [("captured_at", "captured_in_future")], [("household_id", "household_unknown")],
        [("household_id", "household_scope")], [("captured_at", "before_registration")],
        [("captured_at", "timezone_aware")]]
    assert NOTES not in answer.text
    assert await monitoring.count() == (2, 2)
    stored = await monitoring.pool.fetch("SELECT visit_id::text, pendamping_id, notes FROM visit_records")
    assert {(r["visit_id"], r["pendamping_id"], r["notes"]) for r in stored} == {
        (visits[0]["visit_id"], PENDAMPING, NOTES), (visits[6]["visit_id"], PENDAMPING, NOTES)}
    written = await monitoring.pool.fetch("SELECT household_id::text, action, subject FROM processing_records"
                                          " WHERE channel = 'POST /visits/batch'")
    assert {tuple(r) for r in written} == {(own, "write", PENDAMPING), (recent, "write", PENDAMPING)}


async def test_the_same_sync_uploaded_again_is_all_duplicates_and_stores_nothing_twice(monitoring):
    households = [await monitoring.household() for _ in range(3)]
    visits = [visit(h, NOW - timedelta(days=d)) for d, h in enumerate(households, start=1)]
    visits.append(visit(households[0], NOW + timedelta(days=1)))  # refused, and refused again
    async with monitoring.client() as http:
        first = (await http.post("/visits/batch", json={"visits": visits})).json()["results"]
        stored = await monitoring.count()
        again = await http.post("/visits/batch", json={"visits": visits})
    assert [r["result"] for r in first] == ["recorded"] * 3 + ["rejected"]
    assert again.status_code == 200
    assert [r["result"] for r in again.json()["results"]] == ["duplicate"] * 3 + ["rejected"]
    assert stored == (3, 3)
    assert await monitoring.count() == (3, 3)


async def test_a_visit_and_its_record_of_processing_are_written_together_and_once(monitoring):
    household = await monitoring.household()
    one = visit(household)
    async with monitoring.client() as http:
        assert (await http.post("/visits", json=one)).status_code == 201
        assert (await http.post("/visits", json=one)).status_code == 200  # the same visit again: no new record
    written = await monitoring.pool.fetch(
        "SELECT household_id::text, subject, role, client_id, action, fields, channel, purpose FROM processing_records"
        " WHERE channel LIKE 'POST %'")
    assert [tuple(r) for r in written] == [
        (household, PENDAMPING, "pendamping", "ejsika-tests", "write", list(VISIT_RECORD_FIELDS), "POST /visits",
         "recording a pendamping's visit to a family")]


async def test_a_visit_twice_in_one_batch_is_recorded_once(monitoring):
    household = await monitoring.household()
    twice = visit(household)
    async with monitoring.client() as http:
        answer = await http.post("/visits/batch", json={"visits": [twice, visit(household), twice]})
    assert [r["result"] for r in answer.json()["results"]] == ["recorded", "recorded", "duplicate"]
    assert await monitoring.count() == (2, 2)


async def test_a_visit_id_of_another_household_is_not_a_duplicate(monitoring):
    one, two = await monitoring.household(), await monitoring.household()
    first = visit(one)
    async with monitoring.client() as http:
        await http.post("/visits", json=first)
        reused = await http.post("/visits/batch", json={"visits": [{**first, "household_id": two}]})
        single = await http.post("/visits", json={**first, "household_id": two})
    assert [(r["result"], r["errors"][0]["rule"]) for r in reused.json()["results"]] == [("rejected", "visit_id_taken")]
    assert single.status_code == 409
    assert await monitoring.count() == (1, 1)


async def test_late_and_out_of_order_visits_are_stored_as_captured(monitoring):
    household = await monitoring.household()
    later, earlier = NOW - timedelta(days=1), NOW - timedelta(days=20)
    late = visit(household, earlier)
    async with monitoring.client() as http:
        assert (await http.post("/visits", json=visit(household, later))).status_code == 201
        assert (await http.post("/visits/batch", json={"visits": [late]})).json()["results"][0]["result"] == "recorded"
        page = (await http.get(f"/households/{household}/visit-records")).json()
    assert [datetime.fromisoformat(i["captured_at"]) for i in page["items"]] == [later, earlier]
    stored = await monitoring.pool.fetchval("SELECT captured_at FROM visit_records WHERE visit_id = $1",
                                            uuid.UUID(late["visit_id"]))
    assert stored == earlier
    # within one upload, the events follow captured_at whatever the order sent
    before = len(await monitoring.events())
    async with monitoring.client() as http:
        await http.post("/visits/batch", json={"visits": [visit(household, NOW - timedelta(hours=1)),
                                                         visit(household, NOW - timedelta(hours=3))]})
    sent = [e["data"]["captured_at"] for _, e in (await monitoring.events())[before:]]
    assert [datetime.fromisoformat(t) for t in sent] == [NOW - timedelta(hours=3), NOW - timedelta(hours=1)]


async def test_a_household_outside_the_caseload_is_refused(monitoring):
    theirs = await monitoring.household(pendamping="pendamping-2")
    unassigned = await monitoring.household(pendamping=None)
    async with monitoring.client() as http:
        batch = await http.post("/visits/batch", json={"visits": [visit(theirs), visit(unassigned)]})
        single = await http.post("/visits", json=visit(theirs))
        read = await http.get(f"/households/{theirs}/visit-records")
    assert [(r["result"], r["errors"][0]["rule"]) for r in batch.json()["results"]] == [
        ("rejected", "household_scope")] * 2
    assert single.status_code == 404 and read.status_code == 404
    assert await monitoring.count() == (0, 0)


async def test_the_event_carries_the_visit_keyed_by_household_and_never_the_notes(monitoring):
    household = await monitoring.household()
    sent = visit(household)
    async with monitoring.client() as http:
        answer = await http.post("/visits", json=sent)
    assert answer.status_code == 201 and answer.json()["result"] == "recorded"
    rows = await monitoring.pool.fetch("SELECT key, value, headers FROM outbox WHERE topic = 'ejsika.visit'")
    assert all(NOTES.encode() not in bytes(r["value"]) and NOTES not in r["headers"] for r in rows)
    ((key, event),) = await monitoring.events()
    assert isinstance(VISIT.parse(json.dumps(event).encode()), VisitRecorded)  # as its consumers read it
    assert key == household.encode() and event["subject"] == household
    assert event["type"] == "visit.recorded" and event["dataversion"] == 1 and event["source"] == "monitoring"
    assert event["correlation_id"] == sent["visit_id"]  # the visit is where its consequences start
    data = event["data"]
    assert set(data) == {"household_id", "visit_id", "pendamping_id", "captured_at", "received_at", "location",
                         "observations"}
    assert (data["household_id"], data["visit_id"], data["pendamping_id"]) == (household, sent["visit_id"], PENDAMPING)
    assert datetime.fromisoformat(data["captured_at"]) == datetime.fromisoformat(sent["captured_at"])
    assert data["observations"]["school"] == [{**sent["observations"]["school"][0]}]
    assert data["location"]["latitude"] == sent["location"]["latitude"]


async def test_one_visit_answers_201_then_200_and_its_rules_as_422(monitoring):
    household = await monitoring.household()
    sent = visit(household)
    async with monitoring.client() as http:
        first, again = await http.post("/visits", json=sent), await http.post("/visits", json=sent)
        future = await http.post("/visits", json=visit(household, NOW + timedelta(hours=1)))
        unknown = await http.post("/visits", json=visit(str(uuid.uuid4())))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["result"] == "duplicate"
    assert future.status_code == 422 and [e["rule"] for e in future.json()["errors"]] == ["captured_in_future"]
    assert unknown.status_code == 404
    assert await monitoring.count() == (1, 1)


async def test_who_made_the_visit(monitoring):
    household = await monitoring.household()
    async with monitoring.client() as http:
        other = await http.post("/visits/batch", json={"visits": [visit(household, pendamping_id="pendamping-2")]})
        own = await http.post("/visits", json=visit(household, pendamping_id=PENDAMPING))
    async with monitoring.client("supervisor", sub="supervisor-1", area="3672") as http:
        for_them = await http.post("/visits", json=visit(household, pendamping_id="pendamping-3"))
        themselves = await http.post("/visits", json=visit(household))
    async with monitoring.client("auditor", sub="auditor-1") as http:
        auditor = await http.post("/visits", json=visit(household))
    assert [(r["result"], r["errors"][0]["rule"]) for r in other.json()["results"]] == [("rejected", "pendamping_own")]
    assert (own.status_code, for_them.status_code, themselves.status_code, auditor.status_code) == (201, 201, 201, 403)
    stored = await monitoring.pool.fetch("SELECT pendamping_id FROM visit_records")
    assert sorted(r["pendamping_id"] for r in stored) == [PENDAMPING, "pendamping-3", "supervisor-1"]


async def test_a_batch_larger_than_the_setting_is_refused_whole(monitoring):
    household = await monitoring.household()
    async with monitoring.client() as http:
        answer = await http.post("/visits/batch", json={"visits": [visit(household) for _ in range(BATCH_MAX + 1)]})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "visits"
    assert await monitoring.count() == (0, 0)


async def test_the_visit_records_are_paged_newest_first_and_each_read_is_recorded(monitoring):
    household = await monitoring.household()
    visits = [visit(household, NOW - timedelta(days=d)) for d in (5, 1, 3)]
    async with monitoring.client() as http:
        await http.post("/visits/batch", json={"visits": visits})
        first = (await http.get(f"/households/{household}/visit-records", params={"limit": 2})).json()
        second = (await http.get(f"/households/{household}/visit-records",
                                 params={"limit": 2, "cursor": first["next_cursor"]})).json()
        broken = await http.get(f"/households/{household}/visit-records", params={"cursor": "bm90IG9uZQ"})
    async with monitoring.client("auditor", sub="auditor-1") as http:
        audited = (await http.get(f"/households/{household}/visit-records")).json()
    ids = [i["visit_id"] for i in first["items"] + second["items"]]
    assert ids == [visits[1]["visit_id"], visits[2]["visit_id"], visits[0]["visit_id"]]
    assert second["next_cursor"] is None and broken.status_code == 422
    newest = first["items"][0]
    assert newest["notes"] == NOTES and newest["observations"]["school"] == visits[1]["observations"]["school"]
    assert [i["visit_id"] for i in audited["items"]] == ids
    reads = await monitoring.pool.fetch("SELECT subject, channel FROM processing_records WHERE action = 'read'"
                                        " ORDER BY id")
    assert [r["subject"] for r in reads] == [PENDAMPING, PENDAMPING, "auditor-1"]
    assert {r["channel"] for r in reads} == {"GET /households/{household_id}/visit-records"}


async def active_household(monitoring) -> str:
    """A household registered 60 days ago and enrolled 40 days ago: its first visit is due."""
    household = await monitoring.household(registered=NOW - timedelta(days=60))
    activated = NOW - timedelta(days=40)
    async with unit_of_work(monitoring.pool, monitoring.service.outbox) as uow:
        await on_enrolment_changed(uow, [EnrolmentChanged(
            source="registry", subject=household, correlation_id=uuid.uuid4(), time=activated,
            data=EnrolmentChangedData(household_id=uuid.UUID(household), version=1, programme="jscm",
                                      region_code="3672011001", status="active", previous_status=None,
                                      effective_date=programme_date(activated)))])
    return household


async def test_an_upload_closes_what_was_due_schedules_the_next_and_ends_the_overdue_state(monitoring):
    """The intake's one locked read serves the schedule: what the visits change is written with them."""
    household = await active_household(monitoring)
    assert await mark_overdue(monitoring.pool, monitoring.service.outbox) == 1
    (first_due,) = await monitoring.pool.fetch("SELECT visit_id, due_date FROM visits")
    older, newer = visit(household, NOW - timedelta(days=3)), visit(household, NOW - timedelta(days=1))
    async with monitoring.client() as http:
        answer = await http.post("/visits/batch", json={"visits": [newer, older, visit(household, NOW + timedelta(1))]})
        again = await http.post("/visits", json=older)
    assert [r["result"] for r in answer.json()["results"]] == ["recorded", "recorded", "rejected"]
    assert again.status_code == 200 and again.json() == {"visit_id": older["visit_id"], "household_id": household,
                                                         "result": "duplicate"}
    schedule = await monitoring.pool.fetch(
        "SELECT visit_id, kind, due_date, done_at, closed_by FROM visits ORDER BY due_date")
    assert [(r["visit_id"], r["closed_by"]) for r in schedule[:1]] == [(first_due["visit_id"],
                                                                        uuid.UUID(newer["visit_id"]))]
    captured = datetime.fromisoformat(newer["captured_at"])
    assert (schedule[1]["kind"], schedule[1]["due_date"], schedule[1]["done_at"]) == (
        "monthly_session", programme_date(captured) + timedelta(days=30), None)
    head = await monitoring.pool.fetchrow(
        "SELECT next_due, overdue_since, last_visit_at FROM households WHERE household_id = $1", uuid.UUID(household))
    assert tuple(head) == (schedule[1]["due_date"], None, captured)
    events = [json.loads(bytes(r["value"])) for r in await monitoring.pool.fetch(
        "SELECT value FROM outbox WHERE topic = 'ejsika.visit' ORDER BY id")]
    assert [(e["type"], e["data"].get("overdue")) for e in events] == [
        ("visit.scheduled", None), ("visit.overdue", True), ("visit.recorded", None), ("visit.recorded", None),
        ("visit.scheduled", None), ("visit.overdue", False)]


async def test_an_upload_whose_latest_visit_is_a_duplicate_schedules_from_the_visits_stored_before(monitoring):
    """The schedule is written with the visits, planned from their latest one; when that one was stored
    already, the new older one still counts (its household's last visit stays the latest) and nothing is
    scheduled twice."""
    household = await active_household(monitoring)
    newer, older = visit(household, NOW - timedelta(days=1)), visit(household, NOW - timedelta(days=5))
    async with monitoring.client() as http:
        first = await http.post("/visits", json=newer)
        head = await monitoring.pool.fetchrow(
            "SELECT next_due, last_visit_at FROM households WHERE household_id = $1", uuid.UUID(household))
        answer = await http.post("/visits/batch", json={"visits": [older, newer]})
    assert first.status_code == 201
    assert [r["result"] for r in answer.json()["results"]] == ["recorded", "duplicate"]
    assert head["last_visit_at"] == datetime.fromisoformat(newer["captured_at"])
    after = await monitoring.pool.fetchrow(
        "SELECT next_due, last_visit_at FROM households WHERE household_id = $1", uuid.UUID(household))
    assert tuple(after) == tuple(head)
    open_due = await monitoring.pool.fetch("SELECT closed_by FROM visits WHERE done_at IS NOT NULL")
    assert [r["closed_by"] for r in open_due] == [uuid.UUID(newer["visit_id"])]
    events = [json.loads(bytes(r["value"]))["type"] for r in await monitoring.pool.fetch(
        "SELECT value FROM outbox WHERE topic = 'ejsika.visit' ORDER BY id")]
    assert events == ["visit.scheduled", "visit.recorded", "visit.scheduled", "visit.recorded"]
