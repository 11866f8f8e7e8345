"""Postgres adapter of the registry: households, members and their history, written in batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from ejsika_contracts import EligibilityAssessed, HouseholdMember, HouseholdRegisteredV2
from ejsika_runtime import scopes

from . import history
from .domain.identifiers import nik_digest

# The fields of a household that are personal data, as named in the record of processing.
PERSONAL_FIELDS = ("kk_number", "address", "welfare", "members.nik", "members.name", "members.sex",
                   "members.birth_date", "members.relation", "members.in_school", "members.pregnant",
                   "members.disability", "members.health_insurance", "members.quality_flags", "members.nik_status")


MEMBER_COLUMNS = ("member_id", "nik", "nik_status", "name", "sex", "birth_date", "relation", "in_school",
                  "pregnant", "disability", "health_insurance", "quality_flags")
# The columns of members as a batch of new memberships is copied in (add_members, the import).
MEMBER_COPY_COLUMNS = ("household_id", "position", "member_id", "nik", "nik_digest", "nik_status", "name", "sex",
                       "birth_date", "relation", "in_school", "pregnant", "disability", "health_insurance",
                       "quality_flags", "kecamatan")
HOUSEHOLD_FIELDS = ("programme", "region_code", "kk_number", "address", "welfare", "status", "score", "rule_set")


def encode_field(name: str, value: Any) -> Any:
    """A household field as its column takes it (welfare is JSON text)."""
    return json.dumps(value) if name == "welfare" else value


def member_state(member: HouseholdMember | asyncpg.Record | dict) -> dict[str, Any]:
    """A member as the history and the state of a household hold it: JSON values, by column."""
    get = (lambda name: getattr(member, name)) if isinstance(member, HouseholdMember) else member.__getitem__
    return {name: history.jsonable(get(name)) for name in MEMBER_COLUMNS}


async def insert_new(conn: asyncpg.Connection, events: Sequence[HouseholdRegisteredV2], nik_key: bytes,
                     source: history.Source = "app", actor: str | None = None) -> set[UUID]:
    """Insert the households not stored yet, each a candidate of its programme; return the ids that were new.

    The caller announces the candidates with `enrolments.entered`, after the registrations.
    """
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
    await add_members(conn, [(e.data.household_id, i, m, e.data.region_code[:6])
                              for e in fresh for i, m in enumerate(e.data.members, start=1)],
                      nik_key)
    await scopes.remember(conn, [
        scopes.HouseholdScope(e.data.household_id, e.data.programme, e.data.region_code, e.data.pendamping_id)
        for e in fresh
    ])
    await history.write(conn, [
        history.Change(e.data.household_id, 1, "registered", source=source, actor=actor, cause_id=e.id,
                       detail={"programme": e.data.programme, "region_code": e.data.region_code,
                               **({"split_from": str(e.data.split_from)} if e.data.split_from else {})})
        for e in fresh
    ])
    await queue_duplicate_checks(conn, [e.data.household_id for e in fresh])
    from . import enrolments  # built on this module, so imported when first needed
    await enrolments.enter_registered(conn, fresh)
    return new


async def add_members(conn: asyncpg.Connection, members: Sequence[tuple[UUID, int, HouseholdMember, str]],
                      nik_key: bytes) -> None:
    """Store new memberships: (household, position, member, the household's kecamatan)."""
    await conn.copy_records_to_table(
        "members",
        records=[
            (hid, position, m.member_id, m.nik, nik_digest(nik_key, m.nik) if m.nik else None, m.nik_status, m.name,
             m.sex, m.birth_date, m.relation, m.in_school, m.pregnant, m.disability, m.health_insurance,
             list(m.quality_flags), kecamatan)
            for hid, position, m, kecamatan in members
        ],
        columns=MEMBER_COPY_COLUMNS,
    )


async def active_households(conn: asyncpg.Connection, niks: Sequence[str]) -> dict[str, UUID]:
    """The household each of these people is an active member of, by NIK."""
    rows = await conn.fetch(
        "SELECT nik, household_id FROM members WHERE nik = ANY($1::text[]) AND ended_at IS NULL", list(niks))
    return {r["nik"]: r["household_id"] for r in rows}


async def record_assessments(conn: asyncpg.Connection, events: Sequence[EligibilityAssessed]) -> int:
    latest: dict[UUID, EligibilityAssessed] = {}
    for event in events:  # a batch is in partition order: the last assessment of a household wins
        latest[event.data.household_id] = event
    chosen = list(latest.values())
    rows = await conn.fetch(
        "WITH old AS (SELECT id, status, score, rule_set FROM households WHERE id = ANY($1::uuid[]) FOR UPDATE)"
        " UPDATE households h SET status = u.status, score = u.score, rule_set = u.rule_set,"
        " version = h.version + 1, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::real[], $4::text[]) AS u(id, status, score, rule_set), old"
        " WHERE h.id = u.id AND old.id = u.id"
        " RETURNING h.id, h.version, h.status, h.score, h.rule_set,"
        "   old.status AS old_status, old.score AS old_score, old.rule_set AS old_rule_set",
        [e.data.household_id for e in chosen],
        ["eligible" if e.data.eligible else "not_eligible" for e in chosen],
        [e.data.score for e in chosen],
        [e.data.rule_set for e in chosen],
    )
    await history.write(conn, [
        history.Change(
            r["id"], r["version"], "assessed",
            history.diff({k: r[f"old_{k}"] for k in ("status", "score", "rule_set")},
                         {k: r[k] for k in ("status", "score", "rule_set")}),
            source="eligibility", actor="eligibility", cause_id=latest[r["id"]].id,
            detail={"status": r["status"], "score": r["score"], "rule_set": r["rule_set"]},
        )
        for r in rows
    ])
    return len(rows)


async def queue_duplicate_checks(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> None:
    """Have these households' members compared with their neighbours' for likely duplicates, in the
    caller's transaction; the comparison itself runs later, in batches (duplicates.check_queued).
    Call it wherever members join or their name or birth date changes."""
    if household_ids:
        await conn.execute("INSERT INTO duplicate_checks (household_id) SELECT unnest($1::uuid[])"
                           " ON CONFLICT (household_id) DO NOTHING", list(household_ids))


async def households_of_person(conn: asyncpg.Connection, digest: bytes) -> list[UUID]:
    rows = await conn.fetch("SELECT DISTINCT household_id FROM members WHERE nik_digest = $1", digest)
    return [r["household_id"] for r in rows]


async def backfill_digests(pool: asyncpg.Pool, nik_key: bytes, batch: int = 1000) -> None:
    """Give the NIK's keyed hash to members stored before it existed, a batch at a time."""
    while True:
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT household_id, position, nik FROM members"
                                    " WHERE nik_digest IS NULL AND nik IS NOT NULL LIMIT $1", batch)
            if not rows:
                return
            await conn.executemany(
                "UPDATE members SET nik_digest = $3 WHERE household_id = $1 AND position = $2",
                [(r["household_id"], r["position"], nik_digest(nik_key, r["nik"])) for r in rows],
            )


async def current_state(conn: asyncpg.Connection, household_id: UUID, *, lock: bool = False) -> dict | None:
    """The household now: its fields, active members by id and enrolments by programme.

    `lock` holds the household's row until the transaction ends: the writer that changes it next.
    """
    household = await conn.fetchrow(
        "SELECT h.*, s.pendamping_id FROM households h LEFT JOIN household_scope s ON s.household_id = h.id"
        " WHERE h.id = $1" + (" FOR UPDATE OF h" if lock else ""),
        household_id,
    )
    if household is None:
        return None
    members = await conn.fetch(
        f"SELECT {', '.join(MEMBER_COLUMNS)} FROM members WHERE household_id = $1 AND ended_at IS NULL ORDER BY position",
        household_id,
    )
    enrolments = await conn.fetch(
        "SELECT programme, status, exit_kind, reason, effective_date FROM enrolments WHERE household_id = $1",
        household_id,
    )
    state = dict(household)
    state["welfare"] = json.loads(state["welfare"])
    state["members"] = {str(m["member_id"]): member_state(m) for m in members}
    state["enrolments"] = {e["programme"]: history.jsonable({k: e[k] for k in ("status", "exit_kind", "reason",
                                                                                 "effective_date")})
                           for e in enrolments}
    return state


async def full_history(conn: asyncpg.Connection, household_id: UUID) -> list[dict]:
    items, _ = await history.page(conn, household_id, 0, 1_000_000)
    return items
