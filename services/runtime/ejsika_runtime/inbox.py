"""Inbox: the ids of the events a consumer has applied, claimed in the effect's transaction."""

from __future__ import annotations

from collections.abc import Sequence
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
