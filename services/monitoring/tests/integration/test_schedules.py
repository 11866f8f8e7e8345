"""The visit schedule and caseloads on the real PostgreSQL: activation schedules, suspension cancels, a visit
closes what is due and ends overdue with one event, the overdue check raises one event per household however
often it runs, and the caseload and unassigned lists."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

import ejsika_monitoring
from ejsika_contracts import (
    EnrolmentChanged,
    EnrolmentChangedData,
    HouseholdRegisteredDataV2,
    HouseholdRegisteredV2,
    Observations,
    VisitRecordedData,
)
from ejsika_monitoring import api, caseload_api
from ejsika_monitoring.schedules import mark_overdue, on_enrolment_changed, on_registered, on_visits
from ejsika_runtime.programme_time import programme_date, programme_today
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
NOW = datetime.now(timezone.utc)
TODAY = programme_today()


class Monitoring:
    def __init__(self, service: Service, idp: LocalIdentity) -> None:
        self.service, self.idp = service, idp
        self.versions: dict[uuid.UUID, int] = {}

    @property
    def pool(self):
        return self.service.pool

    def client(self, role: str, sub: str = "user-1", **claims) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.service.app()), base_url="http://monitoring",
                                 headers=self.idp.headers(role, sub=sub, **claims))

    async def household(self, pendamping: str | None = "pendamping-1", region: str = "3672011001",
                        programme: str = "jscm") -> uuid.UUID:
        household_id = uuid.uuid4()
        data = HouseholdRegisteredDataV2.model_validate({
            "household_id": household_id, "programme": programme, "region_code": region,
            "kk_number": "3672010101200001", "address": "x", "welfare": {}, "pendamping_id": pendamping,
            "members": [{"member_id": uuid.uuid4(), "nik": "3672011203800001", "name": "A", "sex": "M",
                         "birth_date": "1980-03-12", "relation": "head"}],
        })
        async with unit_of_work(self.pool, self.service.outbox) as uow:
            await on_registered(uow, [HouseholdRegisteredV2(source="registry", subject=str(household_id),
                                                            correlation_id=uuid.uuid4(), time=NOW, data=data)])
        self.versions[household_id] = 1
        return household_id

    def step(self, household_id: uuid.UUID, status: str, at: datetime = NOW, programme: str = "jscm",
             version: int | None = None) -> EnrolmentChanged:
        if version is None:
            version = self.versions[household_id] = self.versions[household_id] + 1
        return EnrolmentChanged(source="registry", subject=str(household_id), correlation_id=uuid.uuid4(), time=at,
                                data=EnrolmentChangedData(
                                    household_id=household_id, version=version, programme=programme,
                                    region_code="3672011001", status=status, previous_status=None,
                                    effective_date=programme_date(at),
                                    exit_kind="mandiri" if status == "exited" else None))

    async def enrol(self, *steps: EnrolmentChanged) -> None:
        async with unit_of_work(self.pool, self.service.outbox) as uow:
            await on_enrolment_changed(uow, list(steps))

    async def visit(self, household_id: uuid.UUID, captured_at: datetime) -> None:
        data = VisitRecordedData(household_id=household_id, visit_id=uuid.uuid4(), pendamping_id="pendamping-1",
                                 captured_at=captured_at, received_at=NOW, observations=Observations())
        async with unit_of_work(self.pool, self.service.outbox) as uow:
            await on_visits(uow, [data])

    async def schedule(self, household_id: uuid.UUID) -> list[dict]:
        rows = await self.pool.fetch(
            "SELECT kind, opens_on, due_date, done_at, cancelled_at FROM visits WHERE household_id = $1"
            " ORDER BY scheduled_at, due_date", household_id)
        return [dict(r) for r in rows]

    async def head(self, household_id: uuid.UUID) -> dict:
        return dict(await self.pool.fetchrow("SELECT status, next_due, overdue_since, last_visit_at FROM households"
                                             " WHERE household_id = $1", household_id))

    async def events(self, kind: str, household_id: uuid.UUID | None = None) -> list[dict]:
        rows = await self.pool.fetch("SELECT value FROM outbox WHERE topic = 'ejsika.visit' ORDER BY id")
        found = [json.loads(bytes(r["value"])) for r in rows]
        return [e for e in found if e["type"] == kind and (household_id is None or e["subject"] == str(household_id))]

    async def make_due(self, household_id: uuid.UUID, due: date) -> None:
        """Move the open due visit (as if its date had come): the schedule's state, not its rules."""
        await self.pool.execute("UPDATE visits SET due_date = $2 WHERE household_id = $1 AND done_at IS NULL"
                                " AND cancelled_at IS NULL", household_id, due)
        await self.pool.execute("UPDATE households SET next_due = $2 WHERE household_id = $1", household_id, due)


@pytest.fixture
async def monitoring(migrated_schema) -> Monitoring:
    _, pool = await migrated_schema("monitoring", MIGRATIONS)
    idp = LocalIdentity()
    service = Service("monitoring", Settings(auth_issuer=ISSUER), MIGRATIONS)
    idp.install(service.access)
    service._pool = pool  # the routes run on the test's schema; the service itself is never started
    service.router.include_router(api.routes(service))
    service.router.include_router(caseload_api.routes(service))
    return Monitoring(service, idp)


async def test_a_registered_candidate_is_followed_but_not_scheduled(monitoring: Monitoring):
    household = await monitoring.household()
    assert await monitoring.schedule(household) == []
    assert (await monitoring.head(household))["status"] == "candidate"


async def test_activation_schedules_the_first_visit_once_and_suspension_cancels_it(monitoring: Monitoring):
    household = await monitoring.household()
    activation = monitoring.step(household, "active")
    await monitoring.enrol(activation)
    await monitoring.enrol(monitoring.step(household, "active"))  # e.g. a replay with a newer version: no second
    (first,) = await monitoring.schedule(household)
    assert first["kind"] == "first_visit" and first["due_date"] == programme_date(NOW) + timedelta(days=14)
    assert (await monitoring.head(household))["next_due"] == first["due_date"]
    assert len(await monitoring.events("visit.scheduled", household)) == 1

    await monitoring.enrol(monitoring.step(household, "suspended"))
    (cancelled,) = await monitoring.schedule(household)
    assert cancelled["cancelled_at"] is not None and cancelled["done_at"] is None
    assert await monitoring.head(household) | {"last_visit_at": None} == {
        "status": "suspended", "next_due": None, "overdue_since": None, "last_visit_at": None}

    # an older step arriving late (a dead-letter replay) does not reactivate the family
    await monitoring.enrol(monitoring.step(household, "active", version=2))
    assert (await monitoring.head(household))["status"] == "suspended"
    await monitoring.enrol(monitoring.step(household, "active"))  # resumed: a visit is due again
    assert [v["cancelled_at"] is None for v in await monitoring.schedule(household)] == [False, True]


async def test_a_visit_closes_what_is_due_and_ends_the_overdue_state_with_one_event(monitoring: Monitoring):
    household = await monitoring.household()
    await monitoring.enrol(monitoring.step(household, "active", at=NOW - timedelta(days=40)))
    assert await mark_overdue(monitoring.pool, monitoring.service.outbox) == 1  # due 26 days ago
    overdue_since = (await monitoring.head(household))["overdue_since"]
    assert overdue_since == programme_date(NOW - timedelta(days=40)) + timedelta(days=14)

    await monitoring.visit(household, NOW - timedelta(hours=1))
    first, following = await monitoring.schedule(household)
    assert first["done_at"] is not None and following["done_at"] is None
    assert following["due_date"] == programme_date(NOW - timedelta(hours=1)) + timedelta(days=30)
    head = await monitoring.head(household)
    assert head["overdue_since"] is None and head["next_due"] == following["due_date"]
    ended = [e["data"] for e in await monitoring.events("visit.overdue", household)]
    assert [(e["overdue"], e["due_date"]) for e in ended] == [(True, overdue_since.isoformat()),
                                                            (False, overdue_since.isoformat())]

    # a late upload of an older visit moves nothing back and raises nothing
    await monitoring.visit(household, NOW - timedelta(days=20))
    assert await monitoring.schedule(household) == [first, following]
    assert len(await monitoring.events("visit.overdue", household)) == 2


async def test_the_overdue_check_raises_one_event_per_household_however_often_it_runs(monitoring: Monitoring):
    households = [await monitoring.household() for _ in range(7)]
    await monitoring.enrol(*(monitoring.step(h, "active") for h in households))
    for h in households[:5]:
        await monitoring.make_due(h, TODAY - timedelta(days=1))
    await monitoring.make_due(households[5], TODAY)  # due today: not overdue yet
    outbox = monitoring.service.outbox
    assert await mark_overdue(monitoring.pool, outbox, batch=2) == 5  # in batches of 2: 2 + 2 + 1
    for _ in range(3):
        assert await mark_overdue(monitoring.pool, outbox, batch=2) == 0
    raised = await monitoring.events("visit.overdue")
    assert sorted(e["subject"] for e in raised) == sorted(str(h) for h in households[:5])
    assert all(e["data"]["overdue"] and e["data"]["pendamping_id"] == "pendamping-1" for e in raised)
    assert await mark_overdue(monitoring.pool, outbox, today=TODAY + timedelta(days=1)) == 1  # due today's, tomorrow


async def test_a_visit_to_a_household_no_longer_active_closes_its_visit_and_schedules_nothing(monitoring: Monitoring):
    household = await monitoring.household()
    # followed before monitoring read enrolments: an open first visit, status unknown
    await monitoring.enrol(monitoring.step(household, "active"))
    await monitoring.pool.execute("UPDATE households SET status = NULL WHERE household_id = $1", household)
    await monitoring.visit(household, NOW)
    (closed,) = await monitoring.schedule(household)
    assert closed["done_at"] is not None and (await monitoring.head(household))["next_due"] is None


async def test_the_caseload_lists_a_pendamping_s_active_families_soonest_due_first(monitoring: Monitoring):
    mine = [await monitoring.household() for _ in range(3)]
    theirs = await monitoring.household(pendamping="pendamping-2")
    candidate = await monitoring.household()
    await monitoring.enrol(*(monitoring.step(h, "active") for h in [*mine, theirs]))
    await monitoring.make_due(mine[2], TODAY - timedelta(days=3))
    await monitoring.make_due(mine[0], TODAY + timedelta(days=1))
    async with monitoring.client("pendamping", sub="pendamping-1") as app:
        first = (await app.get("/caseload", params={"limit": 2, "pendamping_id": "pendamping-2"})).json()
        second = (await app.get("/caseload", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    listed = [i["household_id"] for i in first["items"] + second["items"]]
    assert listed == [str(mine[2]), str(mine[0]), str(mine[1])], "own families only, soonest due first"
    assert str(candidate) not in listed and str(theirs) not in listed
    assert [i["overdue"] for i in first["items"]] == [True, False] and second["next_cursor"] is None

    async with monitoring.client("supervisor", area="3672") as app:
        theirs_seen = (await app.get("/caseload", params={"pendamping_id": "pendamping-2"})).json()
    assert [i["household_id"] for i in theirs_seen["items"]] == [str(theirs)]
    async with monitoring.client("supervisor", area="3602") as app:
        assert (await app.get("/caseload", params={"pendamping_id": "pendamping-2"})).json()["items"] == []
    async with monitoring.client("pendamping") as app:
        assert (await app.get("/caseload", params={"cursor": "not-a-cursor"})).status_code == 422


async def test_unassigned_active_families_are_listed_per_area_and_programme(monitoring: Monitoring):
    here = await monitoring.household(pendamping=None, region="3672011001")
    there = await monitoring.household(pendamping=None, region="3602012002", programme="jamsosratu")
    assigned = await monitoring.household()
    waiting = await monitoring.household(pendamping=None)  # a candidate: nobody needs to follow it yet
    await monitoring.enrol(monitoring.step(here, "active"), monitoring.step(assigned, "active"),
                           monitoring.step(there, "active", programme="jamsosratu"))

    async def unassigned(role: str, **claims) -> set[str] | int:
        async with monitoring.client(role, **claims) as app:
            answer = await app.get("/caseloads/unassigned")
        return {i["household_id"] for i in answer.json()["items"]} if answer.status_code == 200 else answer.status_code

    assert await unassigned("supervisor", area="3672") == {str(here)}
    assert await unassigned("supervisor", area="3602") == {str(there)}
    assert await unassigned("operator", programme="jamsosratu") == {str(there)}
    assert await unassigned("auditor") == {str(here), str(there)}
    assert await unassigned("pendamping") == 403
    assert str(waiting) not in await unassigned("auditor")


async def test_overdue_households_are_paged_by_due_date_within_the_caller_s_scope(monitoring: Monitoring):
    households = [await monitoring.household() for _ in range(3)]
    elsewhere = await monitoring.household(pendamping="pendamping-9", region="3602012002")
    await monitoring.enrol(*(monitoring.step(h, "active") for h in [*households, elsewhere]))
    for days, h in zip((5, 9, 7, 6), [*households, elsewhere]):
        await monitoring.make_due(h, TODAY - timedelta(days=days))
    async with monitoring.client("supervisor", area="3672") as app:
        first = (await app.get("/visits/overdue", params={"limit": 2})).json()
        second = (await app.get("/visits/overdue", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert first["as_of"] == TODAY.isoformat()
    assert [i["household_id"] for i in first["items"] + second["items"]] == \
        [str(households[1]), str(households[2]), str(households[0])]
    assert second["next_cursor"] is None and first["items"][0]["kind"] == "first_visit"
