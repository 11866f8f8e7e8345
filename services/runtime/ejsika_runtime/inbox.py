"""Inbox: the ids of the events a consumer has applied, claimed in the effect's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import asyncpg


async def claim(conn: asyncpg.Connection, topic: str, event_ids: Sequence[UUID]) -> set[UUID]:
    """Record the ids; return those seen for the first time. Only these may take effect."""
    if not event_ids:
        return set()
    rows = await conn.fetch(
        "INSERT INTO inbox (event_id, topic) SELECT unnest($1::uuid[]), $2"
        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        list(dict.fromkeys(event_ids)),
        topic,
    )
    return {row["event_id"] for row in rows}


PRUNE_BATCH = 10_000


async def prune(conn: asyncpg.Connection, keep: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Forget the ids applied longer ago than `keep`; answer how many were forgotten.

    An id matters only while its event can come again: redelivered from a topic (its retention) or
    re-read after an operator moved the group's offsets back (within the same retention). `keep`
    is longer than the topics' retention, so what is forgotten can no longer arrive; a dead letter
    replayed later was never applied (its transaction rolled back), so it never had an id here.
    Deleted in batches, so that no single statement holds many locks or a long transaction.
    """
    total = 0
    while True:
        done = await conn.execute(
            "DELETE FROM inbox WHERE event_id IN"
            " (SELECT event_id FROM inbox WHERE applied_at < now() - $1::interval LIMIT $2)",
            keep, batch,
        )
        removed = int(done.split()[-1])
        total += removed
        if removed < batch:
            return total
