"""The stored rule sets: every version loaded, one active per programme, the shipped defaults seeded.

Rule sets are read on every batch (which version is active may change at any moment, on any replica)
but parsed once per process: a stored version never changes, so (programme, version) is its key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import asyncpg

from .domain.rules import RuleSet, defaults, load

SEEDED_BY = "eligibility"
_parsed: dict[tuple[str, int], RuleSet] = {}


def parsed(document: str | dict) -> RuleSet:
    raw = json.loads(document) if isinstance(document, str) else document
    key = (raw["programme"], raw["version"])
    if key not in _parsed:
        _parsed[key] = load(raw)
    return _parsed[key]


async def seed_defaults(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Store the shipped rule sets not stored yet; a programme without an active version gets the first.

    Idempotent, and safe on several replicas at once: a version or an activation another one stored
    first is left as it is.
    """
    shipped = defaults()
    await conn.execute(
        "INSERT INTO rule_sets (programme, version, document, loaded_by, active)"
        " SELECT u.programme, u.version, u.document, $4,"
        "        NOT EXISTS (SELECT FROM rule_sets r WHERE r.programme = u.programme AND r.active)"
        "        AND u.version = (SELECT min(v) FROM unnest($1::text[], $2::int[]) AS w(p, v) WHERE w.p = u.programme)"
        " FROM unnest($1::text[], $2::int[], $3::json[]) AS u(programme, version, document)"
        " ON CONFLICT DO NOTHING",
        [r.programme for r in shipped], [r.version for r in shipped], [json.dumps(r.document()) for r in shipped],
        SEEDED_BY,
    )


async def active(conn: asyncpg.Connection, programmes: Iterable[str]) -> dict[str, RuleSet]:
    """The active rule set of each programme (the shipped defaults are seeded when none is stored)."""
    wanted = sorted(set(programmes))
    rows = await conn.fetch("SELECT programme, version, document::text FROM rule_sets"
                            " WHERE active AND programme = ANY($1::text[])", wanted)
    if len(rows) < len(wanted):
        await seed_defaults(conn)
        rows = await conn.fetch("SELECT programme, version, document::text FROM rule_sets"
                                " WHERE active AND programme = ANY($1::text[])", wanted)
    return {r["programme"]: _cached(r) for r in rows}


async def version(conn: asyncpg.Connection | asyncpg.Pool, programme: str, number: int) -> RuleSet | None:
    row = await conn.fetchrow("SELECT programme, version, document::text FROM rule_sets"
                              " WHERE programme = $1 AND version = $2", programme, number)
    return _cached(row) if row else None


def _cached(row: asyncpg.Record) -> RuleSet:
    key = (row["programme"], row["version"])
    return _parsed[key] if key in _parsed else parsed(row["document"])
