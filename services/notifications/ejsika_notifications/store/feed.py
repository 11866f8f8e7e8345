"""The pull feed: an agency's notifications of its feed subscriptions, read in order, at least once.

Each agency has one feed over all its feed subscriptions. A notification gets its position (1, 2,
3 … per agency) when it is first served, in queueing order; a read serves the positions after
its cursor (or after the last acknowledged one) and acknowledging a cursor marks everything up to
it delivered: those are never served again, anything after it is served again until acknowledged.
Reads and acknowledgements of one agency are serialised by its `feed_cursors` row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from .deliveries import NOTIFICATION_COLUMNS, Member, member

_FEED_SUBSCRIPTIONS = "SELECT id FROM subscriptions WHERE agency = $1 AND channel = 'feed'"


@dataclass(frozen=True)
class Served:
    position: int
    subscription_id: UUID
    member: Member
    first_time: bool


async def _cursor(conn: asyncpg.Connection, agency: str) -> asyncpg.Record:
    await conn.execute("INSERT INTO feed_cursors (agency) VALUES ($1) ON CONFLICT DO NOTHING", agency)
    return await conn.fetchrow("SELECT served, acknowledged FROM feed_cursors WHERE agency = $1 FOR UPDATE", agency)


async def serve(conn: asyncpg.Connection, agency: str, after: int | None, limit: int) -> list[Served]:
    """Up to `limit` notifications after position `after` (None or older than what was
    acknowledged: after the last acknowledged), giving positions to new ones as needed.
    Call inside a transaction."""
    cursor = await _cursor(conn, agency)
    start = max(after or 0, cursor["acknowledged"])
    ahead = max(cursor["served"] - start, 0)  # positions given and not yet passed by this read
    if ahead < limit:
        given = await conn.fetchval(
            "WITH todo AS (SELECT id, $2::bigint + row_number() OVER (ORDER BY seq) AS position"
            f"  FROM deliveries WHERE subscription_id IN ({_FEED_SUBSCRIPTIONS} AND active)"
            "  AND status = 'pending' AND feed_position IS NULL ORDER BY seq LIMIT $3),"
            " given AS (UPDATE deliveries d SET feed_position = todo.position FROM todo WHERE d.id = todo.id"
            "  RETURNING d.feed_position)"
            " SELECT max(feed_position) FROM given",
            agency, cursor["served"], limit - ahead,
        )
        if given is not None:
            await conn.execute("UPDATE feed_cursors SET served = $2 WHERE agency = $1", agency, given)
    rows = await conn.fetch(
        f"SELECT d.feed_position, d.subscription_id, d.feed_position > $3 AS first_time, {NOTIFICATION_COLUMNS}"
        " FROM deliveries d"
        f" WHERE d.subscription_id IN ({_FEED_SUBSCRIPTIONS}) AND d.feed_position > $2"
        " ORDER BY d.feed_position LIMIT $4",
        agency, start, cursor["served"], limit,
    )
    return [
        Served(r["feed_position"], r["subscription_id"], member(r), r["first_time"])
        for r in rows
    ]


@dataclass(frozen=True)
class Acknowledged:
    notifications: int  # newly delivered by this acknowledgement
    lags_s: list[float]


class BeyondServed(ValueError):
    """A cursor past anything served: acknowledging it would drop notifications never seen."""


async def acknowledge(conn: asyncpg.Connection, agency: str, position: int) -> Acknowledged:
    """Everything up to `position` was received: delivered, never served again. Idempotent;
    an older position than the last acknowledged changes nothing. Call inside a transaction."""
    cursor = await _cursor(conn, agency)
    if position > cursor["served"]:
        raise BeyondServed(position)
    if position <= cursor["acknowledged"]:
        return Acknowledged(0, [])
    await conn.execute("UPDATE feed_cursors SET acknowledged = $2 WHERE agency = $1", agency, position)
    rows = await conn.fetch(
        "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = now()"
        f" WHERE subscription_id IN ({_FEED_SUBSCRIPTIONS}) AND feed_position > $2 AND feed_position <= $3"
        " AND status = 'pending' RETURNING extract(epoch FROM clock_timestamp() - created_at)::float8 AS lag",
        agency, cursor["acknowledged"], position,
    )
    return Acknowledged(len(rows), [r["lag"] for r in rows])


def households_by_subscription(served: Sequence[Served]) -> dict[UUID, list[Member]]:
    grouped: dict[UUID, list[Member]] = {}
    for item in served:
        grouped.setdefault(item.subscription_id, []).append(item.member)
    return grouped
