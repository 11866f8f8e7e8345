"""Postgres adapter of the registry: households, members and their history, written in batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

import asyncpg

from ejsika_contracts import EligibilityAssessed, HouseholdRegistered
from ejsika_runtime import scopes

from .domain.identifiers import nik_digest

# The fields of a household that are personal data, as named in the record of processing.
PERSONAL_FIELDS = ("kk_number", "address", "welfare", "members.nik", "members.name", "members.sex",
                   "members.birth_date", "members.relation", "members.in_school", "members.pregnant",
                   "members.disability", "members.quality_flags")


async def insert_new(conn: asyncpg.Connection, events: Sequence[HouseholdRegistered], nik_key: bytes) -> set[UUID]:
    """Insert the households not stored yet; return the ids that were new."""
    if not events:
        return set()
    data = [e.data for e in events]
    rows = await conn.fetch(
        "INSERT INTO households (id, programme, region_code, kk_number, address, welfare)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::json[])"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        [d.household_id for d in data],
        [d.programme for d in data],
        [d.region_code for d in data],
        [d.kk_number for d in data],
        [d.address for d in data],
        [d.welfare.model_dump_json(exclude_none=True) for d in data],
    )
    new = {r["id"] for r in rows}
    fresh = [e for e in events if e.data.household_id in new]
    members = [(e.data.household_id, i, m) for e in fresh for i, m in enumerate(e.data.members, start=1)]
    await conn.copy_records_to_table(
        "members",
        records=[
            (hid, i, m.nik, nik_digest(nik_key, m.nik), m.name, m.sex, m.birth_date, m.relation, m.in_school,
             m.pregnant, m.disability, list(m.quality_flags))
            for hid, i, m in members
        ],
        columns=["household_id", "position", "nik", "nik_digest", "name", "sex", "birth_date", "relation",
                 "in_school", "pregnant", "disability", "quality_flags"],
    )
    await scopes.remember(conn, [
        scopes.HouseholdScope(e.data.household_id, e.data.programme, e.data.region_code, e.data.pendamping_id)
        for e in fresh
    ])
    await _history(conn, [(e.data.household_id, 1, "registered", {"programme": e.data.programme,
                                                                 "region_code": e.data.region_code}, e.id)
                          for e in fresh])
    return new


async def registered_niks(conn: asyncpg.Connection, niks: Sequence[str]) -> set[str]:
    rows = await conn.fetch("SELECT nik FROM members WHERE nik = ANY($1::text[])", list(niks))
    return {r["nik"] for r in rows}


async def record_assessments(conn: asyncpg.Connection, events: Sequence[EligibilityAssessed]) -> int:
    latest: dict[UUID, EligibilityAssessed] = {}
    for event in events:  # a batch is in partition order: the last assessment of a household wins
        latest[event.data.household_id] = event
    chosen = list(latest.values())
    rows = await conn.fetch(
        "UPDATE households h SET status = u.status, score = u.score, rule_set = u.rule_set,"
        " version = h.version + 1, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::real[], $4::text[]) AS u(id, status, score, rule_set)"
        " WHERE h.id = u.id RETURNING h.id, h.version, h.status",
        [e.data.household_id for e in chosen],
        ["eligible" if e.data.eligible else "not_eligible" for e in chosen],
        [e.data.score for e in chosen],
        [e.data.rule_set for e in chosen],
    )
    await _history(conn, [
        (r["id"], r["version"], "assessed",
         {"status": r["status"], "score": latest[r["id"]].data.score, "rule_set": latest[r["id"]].data.rule_set},
         latest[r["id"]].id)
        for r in rows
    ])
    return len(rows)


async def _history(conn: asyncpg.Connection, changes: list[tuple[UUID, int, str, dict, UUID | None]]) -> None:
    if changes:
        await conn.copy_records_to_table(
            "household_history",
            records=[(hid, version, change, json.dumps(detail), cause) for hid, version, change, detail, cause in changes],
            columns=["household_id", "version", "change", "detail", "cause_id"],
        )


async def households_of_person(conn: asyncpg.Connection, digest: bytes) -> list[UUID]:
    rows = await conn.fetch("SELECT DISTINCT household_id FROM members WHERE nik_digest = $1", digest)
    return [r["household_id"] for r in rows]


async def backfill_digests(pool: asyncpg.Pool, nik_key: bytes, batch: int = 1000) -> None:
    """Give the NIK's keyed hash to members stored before it existed, a batch at a time."""
    while True:
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT household_id, position, nik FROM members WHERE nik_digest IS NULL LIMIT $1", batch)
            if not rows:
                return
            await conn.executemany(
                "UPDATE members SET nik_digest = $3 WHERE household_id = $1 AND position = $2",
                [(r["household_id"], r["position"], nik_digest(nik_key, r["nik"])) for r in rows],
            )


async def find(conn: asyncpg.Connection, household_id: UUID) -> dict | None:
    household = await conn.fetchrow("SELECT * FROM households WHERE id = $1", household_id)
    if household is None:
        return None
    members = await conn.fetch(
        "SELECT nik, name, sex, birth_date, relation, in_school, pregnant, disability, quality_flags"
        " FROM members WHERE household_id = $1 ORDER BY position",
        household_id,
    )
    history = await conn.fetch(
        "SELECT version, change, detail, cause_id, changed_at FROM household_history"
        " WHERE household_id = $1 ORDER BY version",
        household_id,
    )
    result = dict(household)
    result["welfare"] = json.loads(result["welfare"])
    result["members"] = [dict(m) for m in members]
    result["history"] = [{**dict(h), "detail": json.loads(h["detail"])} for h in history]
    return result
