"""Ages are taken on the day of registration in Asia/Jakarta, not on the UTC date of the event (real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

import ejsika_eligibility
from ejsika_contracts import HouseholdRegistered, HouseholdRegisteredData
from ejsika_eligibility.assessments import on_registered
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"
# 18:30 UTC on 1 January is 01:30 WIB on 2 January.
LATE_EVENING_UTC = datetime(2026, 1, 1, 18, 30, tzinfo=timezone.utc)


@pytest.fixture
async def schema(migrated_schema):
    return await migrated_schema("eligibility", MIGRATIONS)


def registered(members: list[dict]) -> HouseholdRegistered:
    household = uuid.uuid4()
    data = HouseholdRegisteredData.model_validate({
        "household_id": household, "programme": "jamsosratu", "region_code": "3601011001",
        "kk_number": "3601010101200001", "address": "x", "welfare": {"no_electricity": True},
        "members": members,
    })
    return HouseholdRegistered(source="registry", subject=str(household), correlation_id=uuid.uuid4(),
                               time=LATE_EVENING_UTC, data=data)


async def test_a_child_whose_birthday_is_the_wib_day_of_registration_has_the_new_age(schema):
    name, pool = schema
    head = {"nik": "3601011203800001", "name": "A", "sex": "M", "birth_date": "1980-03-12", "relation": "head"}
    # 15 on 2 January 2026 (WIB), still 14 on 1 January (UTC): a pupil of 15 is about to enter SMA.
    pupil = {"nik": "3601010201110002", "name": "B", "sex": "M", "birth_date": "2011-01-02", "relation": "child",
             "in_school": True}
    event = registered([head, pupil])
    async with unit_of_work(pool, Outbox(name)) as uow:
        await on_registered(uow, [event])
    (assessed,) = uow.events
    assert assessed.data.member_counts.children_entering_sma == 1
    assert assessed.data.member_counts.school_children == 1
