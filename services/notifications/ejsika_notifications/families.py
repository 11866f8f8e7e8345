"""The family projection in PostgreSQL: read and written a batch at a time (see domain/families.py)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from uuid import UUID

import asyncpg

from ejsika_contracts import Event

from .domain.families import Family, FamilyMember, apply, households_of


async def load(conn: asyncpg.Connection, household_ids: Collection[UUID]) -> dict[UUID, Family]:
    """The families kept of these households (one statement, whatever their number: a family's
    columns come with each of its members, and alone, with NULLs, for a family without any)."""
    ids = list(household_ids)
    if not ids:
        return {}
    # Members looked up family by family (LATERAL, kept apart by OFFSET 0): a plain join let the planner,
    # whenever its statistics were taken while the tables were still small, hash a scan of every member
    # of the province (5.6 ms instead of 0.2 for a batch of nine families, the visit path's top statement).
    rows = await conn.fetch(
        "SELECT f.household_id, f.version, f.programme, f.region_code, f.enrolment_status,"
        " m.member_id, m.nik, m.name, m.birth_date, m.sex, m.relation, m.in_school, m.health_insurance"
        " FROM families f LEFT JOIN LATERAL"
        " (SELECT * FROM family_members WHERE household_id = f.household_id OFFSET 0) m ON true WHERE f.household_id = ANY($1::uuid[]) ORDER BY f.household_id, m.birth_date, m.member_id", ids)
    found: dict[UUID, Family] = {}
    for r in rows:
        family = found.get(r["household_id"])
        if family is None:
            family = found[r["household_id"]] = Family(r["household_id"], r["version"], r["programme"],
                                                       r["region_code"], r["enrolment_status"], {})
        if r["member_id"] is not None:
            family.members[r["member_id"]] = FamilyMember(
                r["member_id"], r["nik"], r["name"], r["birth_date"], r["sex"], r["relation"], r["in_school"],
                r["health_insurance"])
    return found


async def save(conn: asyncpg.Connection, families: Mapping[UUID, Family]) -> None:
    """Write these families whole: their row upserted, their members replaced."""
    if not families:
        return
    rows = list(families.values())
    await conn.execute(
        "INSERT INTO families (household_id, version, programme, region_code, enrolment_status)"
        " SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[])"
        " ON CONFLICT (household_id) DO UPDATE SET version = excluded.version, programme = excluded.programme,"
        " region_code = excluded.region_code, enrolment_status = excluded.enrolment_status, updated_at = now()",
        [f.household_id for f in rows], [f.version for f in rows], [f.programme for f in rows],
        [f.region_code for f in rows], [f.enrolment_status for f in rows],
    )
    await conn.execute("DELETE FROM family_members WHERE household_id = ANY($1::uuid[])", list(families))
    members = [(f.household_id, m) for f in rows for m in f.members.values()]
    if members:
        await conn.copy_records_to_table("family_members", records=[
            (h, m.member_id, m.nik, m.name, m.birth_date, m.sex, m.relation, m.in_school, m.health_insurance)
            for h, m in members
        ], columns=["household_id", "member_id", "nik", "name", "birth_date", "sex", "relation", "in_school",
                    "health_insurance"],
            schema_name=await _schema(conn))


async def follow(conn: asyncpg.Connection, events: list[Event]) -> dict[UUID, Family]:
    """Apply a batch of registry events, in order, to the families they touch; returns those
    families as they are after the batch (changed or not)."""
    families = await load(conn, households_of(events))
    changed: set[UUID] = set()
    for event in events:
        changed |= apply(families, event)
    await save(conn, {h: families[h] for h in changed})
    return families


async def active_with_pupils_born_between(conn: asyncpg.Connection, first: date, last: date) -> dict[UUID, Family]:
    """Active KPM families with a pupil born in [first, last] (the daily job's candidates)."""
    ids = await conn.fetch(
        "SELECT DISTINCT m.household_id FROM family_members m JOIN families f USING (household_id)"
        " WHERE m.in_school AND m.birth_date BETWEEN $1 AND $2 AND f.enrolment_status = 'active'",
        first, last)
    return await load(conn, [r["household_id"] for r in ids])


async def active_without_health_insurance(conn: asyncpg.Connection) -> dict[UUID, Family]:
    """Active KPM families with a member known to be outside JKN (the daily job's candidates)."""
    ids = await conn.fetch(
        "SELECT DISTINCT m.household_id FROM family_members m JOIN families f USING (household_id)"
        " WHERE m.health_insurance = 'none' AND f.enrolment_status = 'active'")
    return await load(conn, [r["household_id"] for r in ids])


async def _schema(conn: asyncpg.Connection) -> str:
    # COPY needs the table's schema spelled out; the pool's search_path names the service's.
    return await conn.fetchval("SELECT current_schema()")
