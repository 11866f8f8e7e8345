"""The members projection of monitoring from the registry's events (real PostgreSQL): who is in which
household, with what verification needs and nothing else."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest

import ejsika_monitoring
from ejsika_contracts import (
    HouseholdMember,
    HouseholdRegistered,
    HouseholdRegisteredData,
    HouseholdRegisteredDataV2,
    HouseholdRegisteredV2,
    HouseholdSplit,
    HouseholdSplitData,
    MemberAdded,
    MemberAddedData,
    MemberEnded,
    MemberEndedData,
    MemberMoved,
    MemberMovedData,
    MemberUpdated,
    MemberUpdatedData,
)
from ejsika_monitoring import members
from ejsika_monitoring.schedules import on_registered
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"


@pytest.fixture
async def schema(migrated_schema):
    return await migrated_schema("monitoring", MIGRATIONS)


def member(birth: str = "2015-05-01", pregnant: bool = False, member_id: uuid.UUID | None = None,
           relation: str = "child") -> HouseholdMember:
    return HouseholdMember(member_id=member_id or uuid.uuid4(), nik_status="pending", name="Siti Aminah", sex="F",
                           birth_date=date.fromisoformat(birth), relation=relation, pregnant=pregnant)


def envelope(cls, household: uuid.UUID, data):
    return cls(source="registry", subject=str(household), correlation_id=uuid.uuid4(), data=data)


def registered_v2(household: uuid.UUID, people: list[HouseholdMember], version: int = 1) -> HouseholdRegisteredV2:
    return envelope(HouseholdRegisteredV2, household, HouseholdRegisteredDataV2(
        household_id=household, version=version, programme="jscm", region_code="3672011001",
        kk_number="3672010101200001", address="Jl. Mawar 1", members=people, welfare={}))


async def apply(name, pool, handler, *events) -> None:
    async with unit_of_work(pool, Outbox(name)) as uow:
        await handler(uow, list(events))


async def rows(pool) -> dict[uuid.UUID, dict]:
    return {r["member_id"]: dict(r) for r in await pool.fetch("SELECT * FROM members")}


async def test_registration_v2_projects_members_without_names_or_niks_beside_the_schedule(schema):
    name, pool = schema
    household, head, kid = uuid.uuid4(), member("1990-01-01", pregnant=True, relation="head"), member()
    await apply(name, pool, members.with_members(on_registered), registered_v2(household, [head, kid]))
    projected = await rows(pool)
    assert projected[head.member_id] == {"member_id": head.member_id, "household_id": household,
                                         "birth_date": date(1990, 1, 1), "sex": "F", "pregnant": True,
                                         "active": True, "household_version": 1}
    assert projected.keys() == {head.member_id, kid.member_id}
    # the schedule's own handler still ran
    assert await pool.fetchval("SELECT count(*) FROM households WHERE household_id = $1", household) == 1


async def test_registration_v1_names_no_members(schema):
    name, pool = schema
    household = uuid.uuid4()
    v1 = envelope(HouseholdRegistered, household, HouseholdRegisteredData.model_validate({
        "household_id": household, "programme": "jscm", "region_code": "3672011001",
        "kk_number": "3672010101200001", "address": "x", "welfare": {},
        "members": [{"nik": "3672011203800001", "name": "A", "sex": "M", "birth_date": "1980-03-12",
                     "relation": "head"}]}))
    await apply(name, pool, members.with_members(on_registered), v1)
    assert await rows(pool) == {}
    assert await pool.fetchval("SELECT count(*) FROM households WHERE household_id = $1", household) == 1


async def test_added_updated_ended_in_one_batch_apply_in_order(schema):
    name, pool = schema
    household, kid = uuid.uuid4(), member()
    await apply(name, pool, members.on_registered, registered_v2(household, [member("1985-01-01", relation="head")]))
    baby = member("2026-01-02")
    await apply(name, pool, members.on_added,
                envelope(MemberAdded, household, MemberAddedData(household_id=household, version=2, member=baby,
                                                                 reason="birth", effective_date=date(2026, 1, 2))),
                envelope(MemberAdded, household, MemberAddedData(household_id=household, version=3, member=kid,
                                                                 reason="moved_in", effective_date=date(2026, 1, 5))))
    pregnant_again = kid.model_copy(update={"pregnant": True})
    await apply(name, pool, members.on_updated,
                envelope(MemberUpdated, household, MemberUpdatedData(household_id=household, version=4,
                                                                     member=pregnant_again, changed=["pregnant"])),
                # an older state replayed after the newer one is refused by the version guard
                envelope(MemberUpdated, household, MemberUpdatedData(household_id=household, version=3,
                                                                     member=kid, changed=["pregnant"])))
    await apply(name, pool, members.on_ended,
                envelope(MemberEnded, household, MemberEndedData(household_id=household, version=5,
                                                                 member_id=baby.member_id, kind="died",
                                                                 effective_date=date(2026, 2, 1))))
    projected = await rows(pool)
    assert projected[kid.member_id]["pregnant"] is True
    assert projected[baby.member_id]["active"] is False
    assert projected[kid.member_id]["active"] is True


async def test_a_member_moved_leaves_one_household_and_joins_the_other(schema):
    name, pool = schema
    old, new, kid = uuid.uuid4(), uuid.uuid4(), member()
    await apply(name, pool, members.on_registered, registered_v2(old, [member("1985-01-01", relation="head"), kid]),
                registered_v2(new, [member("1987-01-01", relation="head")]))
    joined = member("2015-05-01")
    await apply(name, pool, members.on_moved, envelope(MemberMoved, new, MemberMovedData(
        household_id=new, version=2, from_household_id=old, from_version=2, previous_member_id=kid.member_id,
        member=joined, effective_date=date(2026, 3, 1))))
    projected = await rows(pool)
    assert projected[kid.member_id]["active"] is False and projected[kid.member_id]["household_id"] == old
    assert projected[joined.member_id]["active"] is True and projected[joined.member_id]["household_id"] == new


@pytest.mark.parametrize("registration_first", [False, True])
async def test_a_split_moves_members_to_the_new_household_whichever_event_comes_first(schema, registration_first):
    name, pool = schema
    old, new = uuid.uuid4(), uuid.uuid4()
    head, son, daughter_in_law = member("1960-01-01", relation="head"), member("1990-01-01"), member("1992-01-01")
    await apply(name, pool, members.on_registered, registered_v2(old, [head, son, daughter_in_law]))
    split = envelope(HouseholdSplit, old, HouseholdSplitData(household_id=old, version=2, new_household_id=new,
                                                             member_ids=[son.member_id, daughter_in_law.member_id]))
    # The new household keeps the members' ids here; its own events may come before the old one's.
    registration = registered_v2(new, [son.model_copy(update={"relation": "head"}), daughter_in_law])
    steps = [(members.on_split, split), (members.on_registered, registration)]
    for handler, event in (steps[::-1] if registration_first else steps):
        await apply(name, pool, handler, event)
    projected = await rows(pool)
    for moved in (son, daughter_in_law):
        assert (projected[moved.member_id]["household_id"], projected[moved.member_id]["active"]) == (new, True)
    assert projected[head.member_id]["active"] is True

