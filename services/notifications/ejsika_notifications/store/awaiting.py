"""Notices waiting for their family (table `awaiting_family`, migration 016).

An event of monitoring can reach this service before the registry's events of its family do (they
come on other topics, read by other consumers). A subscription whose filter needs the family
cannot decide on such a notice yet; rather than lose it, the notice is kept here and matched again
when the family is projected (`release`, by the family's registry batch), or by the periodic
sweep (`release_known`) should the family have been committed between the notice's read of the
projection and its being kept. A notice matched twice is queued once (the queue's key).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from ..domain.deliveries import Notice

EXPIRY_DAYS = 14


async def hold(conn: asyncpg.Connection, notices: Sequence[Notice]) -> None:
    if not notices:
        return
    await conn.execute(
        "INSERT INTO awaiting_family (event_id, household_id, event_type, occurred_at, facts, member_ids)"
        " SELECT e, h, t, o, f, CASE WHEN m THEN NULL ELSE"
        "  coalesce((SELECT array_agg(x::uuid) FROM jsonb_array_elements_text(i) x), '{}') END"
        " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::jsonb[], $6::jsonb[], $7::bool[])"
        "  AS r(e, h, t, o, f, i, m)"
        " ON CONFLICT (event_id) DO NOTHING",
        [n.event_id for n in notices], [n.household_id for n in notices], [n.event_type for n in notices],
        [n.occurred_at for n in notices], [json.dumps(n.facts, default=str) for n in notices],
        [json.dumps([str(i) for i in n.member_ids or ()]) for n in notices],
        [n.member_ids is None for n in notices],
    )


async def release(conn: asyncpg.Connection, household_ids: Collection[UUID]) -> list[Notice]:
    """Take the notices waiting for these families (now projected), oldest first."""
    if not household_ids:
        return []
    return _notices(await conn.fetch(
        f"DELETE FROM awaiting_family WHERE household_id = ANY($1::uuid[]) RETURNING {_COLUMNS}",
        list(household_ids)))


async def release_known(conn: asyncpg.Connection) -> list[Notice]:
    """Take every waiting notice whose family is projected by now (the sweep)."""
    return _notices(await conn.fetch(
        "DELETE FROM awaiting_family a USING families f WHERE f.household_id = a.household_id"
        f" RETURNING {', '.join('a.' + c for c in _COLUMNS.split(', '))}"))


async def expire(conn: asyncpg.Connection, days: int = EXPIRY_DAYS) -> int:
    """Drop the notices whose family has not come in `days`: longer than the topics keep events
    (7 days), so a family that never came will not; returns how many."""
    return await conn.fetchval(
        "WITH gone AS (DELETE FROM awaiting_family WHERE held_at < now() - make_interval(days => $1) RETURNING 1)"
        " SELECT count(*) FROM gone", days)


_COLUMNS = "event_id, household_id, event_type, occurred_at, facts, member_ids, held_at"


def _notices(rows: Sequence[asyncpg.Record]) -> list[Notice]:
    rows = sorted(rows, key=lambda r: (r["held_at"], r["occurred_at"]))
    return [Notice(r["event_id"], r["event_type"], r["household_id"], r["occurred_at"], _members(json.loads(r["facts"])),
                   None if r["member_ids"] is None else tuple(r["member_ids"])) for r in rows]


def _members(value: Any) -> Any:
    """The member ids of the facts back to UUIDs (`Notice.facts` keeps them so, under `member`)."""
    if isinstance(value, dict):
        return {k: UUID(v) if k == "member" and isinstance(v, str) else _members(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_members(v) for v in value]
    return value
