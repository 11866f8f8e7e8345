"""Due dates, the overdue list and the overdue gauge all count days in Asia/Jakarta (real PostgreSQL, real tokens)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

import ejsika_monitoring
from ejsika_contracts import EnrolmentChanged, EnrolmentChangedData, HouseholdRegistered, HouseholdRegisteredData
from ejsika_monitoring import api
from ejsika_monitoring.app import OVERDUE_COUNT_SQL
from ejsika_monitoring.schedules import on_enrolment_changed, on_registered
from ejsika_runtime import problems, programme_time
from ejsika_runtime.access import Access
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.settings import Settings
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
# 18:30 UTC on 1 January is 01:30 WIB on 2 January.
LATE_EVENING_UTC = datetime(2026, 1, 1, 18, 30, tzinfo=timezone.utc)


@pytest.fixture
async def schema(migrated_schema):
    return await migrated_schema("monitoring", MIGRATIONS)


def registered() -> HouseholdRegistered:
    household = uuid.uuid4()
    data = HouseholdRegisteredData.model_validate({
        "household_id": household, "programme": "jamsosratu", "region_code": "3601011001",
        "kk_number": "3601010101200001", "address": "x", "welfare": {},
        "members": [{"nik": "3601011203800001", "name": "A", "sex": "M", "birth_date": "1980-03-12",
                     "relation": "head"}],
    })
    return HouseholdRegistered(source="registry", subject=str(household), correlation_id=uuid.uuid4(),
                               time=LATE_EVENING_UTC, data=data)


def activated(household: HouseholdRegistered) -> EnrolmentChanged:
    data = EnrolmentChangedData(household_id=household.data.household_id, version=2, programme="jamsosratu",
                                region_code=household.data.region_code, status="active", previous_status="candidate",
                                effective_date=date(2026, 1, 2))
    return EnrolmentChanged(source="registry", subject=household.subject, correlation_id=uuid.uuid4(),
                            time=LATE_EVENING_UTC, data=data)


async def schedule(pool: asyncpg.Pool, name: str, count: int) -> list:
    """`count` households registered and activated at 01:30 WIB on 2 January: their first visits."""
    households = [registered() for _ in range(count)]
    async with unit_of_work(pool, Outbox(name)) as uow:
        await on_registered(uow, households)
    async with unit_of_work(pool, Outbox(name)) as uow:
        await on_enrolment_changed(uow, [activated(h) for h in households])
    return uow.events


async def test_the_first_visit_is_due_counting_from_the_wib_day_of_activation(schema):
    name, pool = schema
    (scheduled,) = await schedule(pool, name, 1)
    assert scheduled.data.due_date == date(2026, 1, 16)  # 2 January (WIB) + 14 days
    assert await pool.fetchval("SELECT due_date FROM visits") == date(2026, 1, 16)


async def test_the_overdue_gauge_counts_by_jakartas_date_whatever_the_servers_time_zone(schema, database_url):
    name, pool = schema
    late, due_today = await schedule(pool, name, 2)
    jakarta_today = "(now() AT TIME ZONE 'Asia/Jakarta')::date"
    for event, due in ((late, f"{jakarta_today} - 1"), (due_today, jakarta_today)):
        await pool.execute(f"UPDATE visits SET due_date = {due} WHERE visit_id = $1", event.data.visit_id)
        await pool.execute(f"UPDATE households SET next_due = {due} WHERE household_id = $1",
                           event.data.household_id)
    # At any hour, one of these zones is on another date than Jakarta (UTC+14 from 17:00 WIB, UTC-12 until 19:00).
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        conn = await asyncpg.connect(database_url, server_settings={"search_path": name, "TimeZone": zone})
        try:
            assert await conn.fetchval(OVERDUE_COUNT_SQL) == 1, zone
        finally:
            await conn.close()


async def test_overdue_visits_are_as_of_today_in_jakarta_unless_asked(schema, auth_issuer, tokens, monkeypatch):
    name, pool = schema
    late, due_today = await schedule(pool, name, 2)
    for event, due in ((late, date(2026, 1, 1)), (due_today, date(2026, 1, 2))):
        await pool.execute("UPDATE visits SET due_date = $2 WHERE visit_id = $1", event.data.visit_id, due)
        await pool.execute("UPDATE households SET next_due = $2 WHERE household_id = $1", event.data.household_id, due)
    monkeypatch.setattr(programme_time, "_now", lambda: LATE_EVENING_UTC)  # 01:30 WIB on 2 January
    app = FastAPI()
    app.include_router(api.routes(SimpleNamespace(access=Access(Settings(auth_issuer=auth_issuer)), pool=pool)))
    problems.install(app)
    headers = {"authorization": f"Bearer {tokens.for_user('auditor-demo')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=headers) as client:
        default = (await client.get("/visits/overdue", params={"region_prefix": "3601"})).json()
        asked = (await client.get("/visits/overdue", params={"region_prefix": "3601", "as_of": "2026-01-03"})).json()
    assert default["as_of"] == "2026-01-02"
    assert [v["visit_id"] for v in default["items"]] == [str(late.data.visit_id)]
    assert asked["as_of"] == "2026-01-03" and len(asked["items"]) == 2
