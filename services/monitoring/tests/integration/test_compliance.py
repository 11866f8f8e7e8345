"""Verifikasi komitmen on the real PostgreSQL: a period closed once in batches with its events, late visits
corrected only when the result changes, escalation once per run, and the household's results over HTTP."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

import ejsika_monitoring
from ejsika_monitoring import compliance, compliance_api
from ejsika_monitoring.domain.compliance import Period
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))
NO_LAG = timedelta(0)


@pytest.fixture
async def schema(migrated_schema):
    return await migrated_schema("monitoring", MIGRATIONS)


async def household(pool, *births: str, pendamping: str = "pendamping-1", pregnant: bool = False,
                    known_members: bool = True) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An active JSCM household with members born on `births` (none projected: registered with v1)."""
    h = uuid.uuid4()
    await pool.execute("INSERT INTO households (household_id, programme, region_code, registered_at, status)"
                       " VALUES ($1, 'jscm', '3672011001', '2025-01-01', 'active')", h)
    await pool.execute("INSERT INTO household_scope (household_id, programme, region_code, pendamping_id)"
                       " VALUES ($1, 'jscm', '3672011001', $2)", h, pendamping)
    await pool.execute("INSERT INTO enrolments (household_id, programme, status, effective_date, version, changed_at)"
                       " VALUES ($1, 'jscm', 'active', '2025-01-01', 1, now())", h)
    ids = [uuid.uuid4() for _ in births]
    if known_members:
        await pool.executemany(
            "INSERT INTO members (member_id, household_id, birth_date, sex, pregnant) VALUES ($1, $2, $3, 'F', $4)",
            [(m, h, date.fromisoformat(b), pregnant) for m, b in zip(ids, births)])
    return h, ids


async def visit(pool, h: uuid.UUID, captured: datetime, child: uuid.UUID, present: int, days: int = 20) -> None:
    observations = {"school": [{"member_id": str(child), "enrolled": True, "days_present": present,
                                "school_days": days}]}
    await pool.execute("INSERT INTO visit_records (visit_id, household_id, pendamping_id, captured_at, observations)"
                       " VALUES ($1, $2, 'pendamping-1', $3, $4)", uuid.uuid4(), h, captured, json.dumps(observations))


def in_period(period: Period, day: int = 10) -> datetime:
    return datetime(period.start.year, period.start.month, day, 2, tzinfo=timezone.utc)


async def published(pool, event_type: str) -> list[dict]:
    rows = await pool.fetch("SELECT value FROM outbox WHERE topic = 'ejsika.compliance' ORDER BY id")
    return [e for e in (json.loads(bytes(r["value"])) for r in rows) if e["type"] == event_type]


async def test_a_period_closes_once_in_batches_with_one_event_per_household(schema):
    name, pool = schema
    outbox = Outbox(name)
    attending, (child,) = await household(pool, "2015-06-01")
    absent, (other,) = await household(pool, "2012-06-01")
    silent, _ = await household(pool, "2016-06-01")
    unknown, _ = await household(pool, "2016-06-01", known_members=False)  # registered with v1
    adults, _ = await household(pool, "1980-01-01", "1982-01-01")  # no commitment: nothing to verify
    await visit(pool, attending, in_period(MARCH), child, 18)
    await visit(pool, absent, in_period(MARCH), other, 10)
    await visit(pool, attending, in_period(MARCH) + timedelta(days=40), child, 0)  # April: not this period

    assert await compliance.close_period(pool, outbox, "jscm", MARCH, batch=2) == 5
    assert await compliance.close_period(pool, outbox, "jscm", MARCH, batch=2) == 0  # closed: once
    stored = {r["household_id"]: r["result"] for r in await pool.fetch("SELECT * FROM compliance_results")}
    assert stored == {attending: "compliant", absent: "non_compliant", silent: "not_verifiable",
                      unknown: "not_verifiable"}
    events = await published(pool, "compliance.verified")
    assert sorted(e["subject"] for e in events) == sorted(str(h) for h in stored)
    by_household = {e["data"]["household_id"]: e["data"] for e in events}
    assert by_household[str(absent)]["members"] == [{"member_id": str(other), "commitment": "school",
                                                     "result": "non_compliant", "attendance_rate": 0.5}]
    assert {d["revision"] for d in events for d in [d["data"]]} == {1}
    assert await pool.fetchval("SELECT closed_at IS NOT NULL FROM compliance_periods") is True


async def test_a_late_visit_corrects_a_closed_period_only_when_the_result_changes(schema):
    name, pool = schema
    outbox = Outbox(name)
    h, (child,) = await household(pool, "2015-06-01")
    untouched, (kid,) = await household(pool, "2014-06-01")
    await visit(pool, untouched, in_period(MARCH), kid, 20)
    await compliance.close_period(pool, outbox, "jscm", MARCH)
    assert await pool.fetchval("SELECT result FROM compliance_results WHERE household_id = $1", h) == "not_verifiable"

    await visit(pool, h, in_period(MARCH, 28), child, 19)  # uploaded days later, captured in March
    await visit(pool, untouched, in_period(MARCH, 29), kid, 19)  # late too, but its result stays compliant
    assert await compliance.recheck_late(pool, outbox, lag=NO_LAG) == 1
    row = await pool.fetchrow("SELECT result, revision FROM compliance_results WHERE household_id = $1", h)
    assert (row["result"], row["revision"]) == ("compliant", 2)
    assert await pool.fetchval("SELECT revision FROM compliance_results WHERE household_id = $1", untouched) == 1
    corrections = [e["data"] for e in await published(pool, "compliance.verified") if e["data"]["revision"] > 1]
    assert [(c["household_id"], c["result"], c["revision"]) for c in corrections] == [(str(h), "compliant", 2)]

    await visit(pool, h, in_period(MARCH, 30), child, 20)  # still compliant: no correction
    assert await compliance.recheck_late(pool, outbox, lag=NO_LAG) == 0
    assert await compliance.recheck_late(pool, outbox, lag=NO_LAG) is None  # nothing waiting
    assert await pool.fetchval("SELECT revision FROM compliance_results WHERE household_id = $1", h) == 2
    assert len(await published(pool, "compliance.verified")) == 3


async def test_a_late_visit_of_a_period_not_closed_yet_waits_for_the_close(schema):
    name, pool = schema
    outbox = Outbox(name)
    h, (child,) = await household(pool, "2015-06-01")
    await visit(pool, h, in_period(MARCH), child, 5)
    assert await compliance.recheck_late(pool, outbox, lag=NO_LAG) == 0
    assert await pool.fetchval("SELECT count(*) FROM compliance_results") == 0


async def test_escalation_after_three_consecutive_non_compliant_periods_and_only_once(schema):
    name, pool = schema
    outbox = Outbox(name)
    h, (child,) = await household(pool, "2012-06-01")
    attendance = [10, 10, 10, 10, 20, 10, 10, 10]  # Jan–Apr absent, May attends, Jun–Aug absent
    periods = [Period(date(2026, m, 1), date(2026, m + 1, 1) - timedelta(days=1)) for m in range(1, 9)]
    for period, present in zip(periods, attendance):
        await visit(pool, h, in_period(period), child, present)
        await compliance.close_period(pool, outbox, "jscm", period)
    raised = [e["data"] for e in await published(pool, "compliance.escalated")]
    assert [(e["period_end"], e["kind"], e["consecutive_periods"], e["member_id"]) for e in raised] == [
        ("2026-03-31", "school_dropout_risk", 3, str(child)),
        ("2026-08-31", "school_dropout_risk", 3, str(child))]


async def test_run_once_closes_the_last_finished_period_of_each_programme(schema):
    name, pool = schema
    h, (child,) = await household(pool, "2015-06-01")
    await visit(pool, h, in_period(MARCH), child, 20)
    await compliance.run_once(pool, Outbox(name), today=date(2026, 4, 1))
    await compliance.run_once(pool, Outbox(name), today=date(2026, 4, 2))
    assert [(r["period_start"], r["result"]) for r in await pool.fetch("SELECT * FROM compliance_results")] == [
        (date(2026, 3, 1), "compliant")]
    assert len(await published(pool, "compliance.verified")) == 1


@pytest.fixture
def http(schema):
    name, pool = schema
    idp = LocalIdentity()
    service = Service("monitoring", Settings(auth_issuer=ISSUER), MIGRATIONS)
    idp.install(service.access)
    service._pool = pool
    service.router.include_router(compliance_api.routes(service))
    app = service.app()

    def client(role: str, **claims) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://monitoring",
                                 headers=idp.headers(role, **claims))

    return client


async def test_the_results_of_a_household_newest_first_in_pages_within_the_callers_scope(schema, http):
    name, pool = schema
    outbox = Outbox(name)
    h, (child,) = await household(pool, "2015-06-01", pendamping="pendamping-1")
    other, _ = await household(pool, "2015-06-01", pendamping="pendamping-2")
    for month in (1, 2, 3):
        period = Period(date(2026, month, 1), date(2026, month + 1, 1) - timedelta(days=1))
        await compliance.close_period(pool, outbox, "jscm", period)

    async with http("pendamping", sub="pendamping-1") as client:
        first = await client.get(f"/households/{h}/compliance", params={"limit": 2})
        assert first.status_code == 200, first.text
        assert [i["period_start"] for i in first.json()["items"]] == ["2026-03-01", "2026-02-01"]
        second = await client.get(f"/households/{h}/compliance",
                                  params={"limit": 2, "cursor": first.json()["next_cursor"]})
        assert [i["period_start"] for i in second.json()["items"]] == ["2026-01-01"]
        assert second.json()["next_cursor"] is None
        assert second.json()["items"][0]["members"][0]["result"] == "not_verifiable"
        assert (await client.get(f"/households/{other}/compliance")).status_code == 404
        assert (await client.get(f"/households/{h}/compliance", params={"cursor": "bm9wZQ"})).status_code == 422
    async with http("auditor") as client:
        assert (await client.get(f"/households/{other}/compliance")).status_code == 200
    async with http("agency") as client:
        assert (await client.get(f"/households/{h}/compliance")).status_code == 404
    assert await pool.fetchval("SELECT count(*) FROM processing_records WHERE channel LIKE '%compliance%'") >= 1


async def test_an_operator_closes_a_period_of_their_programme_on_demand_once(schema, http):
    name, pool = schema
    attending, (child,) = await household(pool, "2015-06-01")
    absent, (other,) = await household(pool, "2012-06-01")
    await visit(pool, attending, in_period(MARCH), child, 18)
    await visit(pool, absent, in_period(MARCH), other, 10)
    url = "/compliance/periods/jscm/2026-03-01/closing"

    async with http("operator", programme="jamsosratu") as client:
        assert (await client.post(url)).status_code == 403  # another programme's operator
    async with http("pendamping", sub="pendamping-1") as client:
        assert (await client.post(url)).status_code == 403
    assert await pool.fetchval("SELECT count(*) FROM compliance_results") == 0

    async with http("operator", programme="jscm") as client:
        first = await client.post(url)
        assert first.status_code == 202, first.text
        assert first.json()["households_verified"] == 2
        assert first.json()["period_end"] == "2026-03-31"
        assert first.json()["results"] == {"compliant": 1, "non_compliant": 1}
        events = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'ejsika.compliance'")
        assert events == 2
        again = await client.post(url)  # closed already: answered as it is, nothing changes
        assert again.status_code == 202, again.text
        assert again.json()["households_verified"] == 0
        assert again.json()["closed_at"] == first.json()["closed_at"]
        assert again.json()["results"] == first.json()["results"]
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'ejsika.compliance'") == events

        not_a_start = await client.post("/compliance/periods/jscm/2026-03-02/closing")
        assert not_a_start.status_code == 422
        assert not_a_start.json()["errors"][0]["field"] == "period_start"
        this_month = programme_today().replace(day=1)
        assert (await client.post(f"/compliance/periods/jscm/{this_month}/closing")).status_code == 409
    async with http("admin") as client:
        other = await client.post("/compliance/periods/jamsosratu/2026-03-01/closing")
        assert other.status_code == 202, other.text
        assert other.json()["households_verified"] == 0  # no jamsosratu household here
        unknown = await client.post("/compliance/periods/bansos-x/2026-03-01/closing")
        assert unknown.status_code == 404, "no period of a programme that is not monitored is recorded"
        assert not await pool.fetchval("SELECT count(*) FROM compliance_periods WHERE programme = 'bansos-x'")
