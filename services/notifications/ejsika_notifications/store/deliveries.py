"""The deliveries queue: queued by the consumer, leased and settled by the delivery workers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args
from uuid import UUID

import asyncpg

from ejsika_runtime import processing

from ..domain.deliveries import PlannedDelivery, shared_fields

DeliveryStatus = Literal["pending", "delivered", "failed"]
STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


async def queue(conn: asyncpg.Connection, planned: Sequence[PlannedDelivery]) -> int:
    """Queue the deliveries of a whole batch in one statement; returns how many were new."""
    if not planned:
        return 0
    return await conn.fetchval(
        "WITH queued AS ("
        " INSERT INTO deliveries (subscription_id, event_id, payload, household_id)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::json[], $4::uuid[])"
        " ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING 1)"
        " SELECT count(*) FROM queued",
        [p.subscription_id for p in planned],
        [p.event_id for p in planned],
        [json.dumps(p.payload, separators=(",", ":")) for p in planned],
        [p.household_id for p in planned],
    )


@dataclass(frozen=True)
class Target:
    """Where a subscription's deliveries go."""

    subscription_id: UUID
    agency: str
    event_type: str
    url: str
    secret_encrypted: bytes = field(repr=False)  # decrypted only to sign, right before each POST


async def due_targets(conn: asyncpg.Connection, busy: Sequence[UUID]) -> list[Target]:
    """Active subscriptions with deliveries due now, except those in `busy`.

    A subscription whose secret is still in clear (written before migration 004) waits until the
    start-up encrypts it, a moment later.
    """
    rows = await conn.fetch(
        "SELECT s.id, s.agency, s.event_type, s.url, s.secret_encrypted FROM subscriptions s"
        " WHERE s.active AND s.secret_encrypted IS NOT NULL AND s.id <> ALL($1::uuid[]) AND EXISTS ("
        "  SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id"
        "  AND d.status = 'pending' AND d.next_attempt_at <= now())",
        list(busy),
    )
    return [Target(r["id"], r["agency"], r["event_type"], r["url"], r["secret_encrypted"]) for r in rows]


async def seconds_until_due(conn: asyncpg.Connection, busy: Sequence[UUID]) -> float | None:
    """Seconds until the next pending delivery of an active subscription not in `busy` is due."""
    return await conn.fetchval(
        "SELECT greatest(0, extract(epoch FROM min(d.next_attempt_at) - now()))::float8"
        " FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id"
        " WHERE d.status = 'pending' AND s.active AND s.secret_encrypted IS NOT NULL"
        " AND d.subscription_id <> ALL($1::uuid[])",
        list(busy),
    )


@dataclass(frozen=True)
class Claimed:
    id: UUID
    payload: dict[str, Any]
    attempts: int
    household_id: UUID | None = None


async def claim(conn: asyncpg.Connection, subscription_id: UUID, limit: int, lease_s: float) -> list[Claimed]:
    """Lease up to `limit` due deliveries of one subscription, oldest first.

    SKIP LOCKED lets replicas claim side by side; the lease (next_attempt_at pushed ahead) keeps
    the rows ours after this short transaction, without holding a connection during the POST.
    If this worker dies, the rows fall due again when the lease ends.
    """
    rows = await conn.fetch(
        "WITH due AS ("
        " SELECT id FROM deliveries"
        " WHERE subscription_id = $1 AND status = 'pending' AND next_attempt_at <= now()"
        " ORDER BY next_attempt_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " UPDATE deliveries d SET next_attempt_at = now() + make_interval(secs => $3)"
        " FROM due WHERE d.id = due.id"
        " RETURNING d.id, d.payload, d.attempts, d.seq, d.household_id",
        subscription_id, limit, lease_s,
    )
    rows = sorted(rows, key=lambda r: r["seq"])
    return [Claimed(r["id"], json.loads(r["payload"]), r["attempts"], r["household_id"]) for r in rows]


async def record_shared(conn: asyncpg.Connection, target: Target, batch: Sequence[Claimed]) -> None:
    """What left for the agency, family by family and field by field (the record of processing)."""
    by_fields: dict[tuple[str, ...], list[UUID]] = {}
    for delivery in batch:
        if delivery.household_id is not None:
            by_fields.setdefault(tuple(shared_fields(delivery.payload)), []).append(delivery.household_id)
    for fields, households in by_fields.items():
        await processing.record(conn, processing.Processor(target.agency, "agency"), "share", households, fields,
                                f"webhook {target.subscription_id}", f"{target.event_type} for {target.agency}")


async def settle_delivered(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[float]:
    """Mark delivered; returns each one's seconds from queueing to delivery."""
    rows = await conn.fetch(
        "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = now(),"
        " last_error = NULL WHERE id = ANY($1::uuid[]) AND status = 'pending'"
        " RETURNING extract(epoch FROM now() - created_at)::float8 AS lag",
        list(ids),
    )
    return [r["lag"] for r in rows]


@dataclass(frozen=True)
class FailedAttempt:
    id: UUID
    retry_in_s: float
    final: bool  # no attempt is left: the delivery fails for good


async def settle_failed_attempts(conn: asyncpg.Connection, attempts: Sequence[FailedAttempt], error: str) -> int:
    """Count a failed try of each delivery; returns how many failed for good."""
    return await conn.fetchval(
        "WITH settled AS ("
        " UPDATE deliveries d SET attempts = d.attempts + 1, last_error = $4,"
        "  status = CASE WHEN r.final THEN 'failed' ELSE 'pending' END,"
        "  next_attempt_at = now() + make_interval(secs => r.retry_in_s)"
        " FROM unnest($1::uuid[], $2::float8[], $3::boolean[]) AS r(id, retry_in_s, final)"
        " WHERE d.id = r.id AND d.status = 'pending' RETURNING d.status)"
        " SELECT count(*) FROM settled WHERE status = 'failed'",
        [a.id for a in attempts],
        [a.retry_in_s for a in attempts],
        [a.final for a in attempts],
        error[:200],
    )


async def pending_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Pending deliveries per agency (the label of the metrics: agencies are few, subscriptions grow)."""
    rows = await conn.fetch(
        "SELECT s.agency, count(*) AS n FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id"
        " WHERE d.status = 'pending' GROUP BY 1"
    )
    return {r["agency"]: r["n"] for r in rows}


async def prune_delivered(conn: asyncpg.Connection, older_than_s: float, limit: int = 10_000) -> int:
    """Delete delivered rows (and so the copies of data they hold) past the retention."""
    return await conn.fetchval(
        "WITH gone AS (DELETE FROM deliveries WHERE id IN ("
        " SELECT id FROM deliveries WHERE status = 'delivered'"
        " AND delivered_at < now() - make_interval(secs => $1) LIMIT $2) RETURNING 1)"
        " SELECT count(*) FROM gone",
        older_than_s, limit,
    )


async def requeue_failed(conn: asyncpg.Connection, subscription_id: UUID) -> int:
    """Give the subscription's failed deliveries a fresh set of tries (after the agency is fixed)."""
    count = await conn.fetchval(
        "WITH requeued AS ("
        " UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now()"
        " WHERE subscription_id = $1 AND status = 'failed' RETURNING 1)"
        " SELECT count(*) FROM requeued",
        subscription_id,
    )
    if count:
        await conn.execute("SELECT pg_notify(current_schema() || '_deliveries', '')")
    return count


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as shown to operators: no payload."""

    id: UUID
    subscription_id: UUID
    event_id: UUID
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


_OF_AGENCY = "($%d::text IS NULL OR subscription_id IN (SELECT id FROM subscriptions WHERE agency = $%d))"


async def status_counts(conn: asyncpg.Connection, subscription_id: UUID | None, agency: str | None = None) -> dict[str, int]:
    """Deliveries by status, of one subscription or all (of one agency's subscriptions when given)."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM deliveries WHERE ($1::uuid IS NULL OR subscription_id = $1)"
        " AND " + _OF_AGENCY % (2, 2) + " GROUP BY status",
        subscription_id, agency,
    )
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def recent(
    conn: asyncpg.Connection, subscription_id: UUID | None, status: str | None, limit: int, agency: str | None = None
) -> list[DeliveryView]:
    rows = await conn.fetch(
        "SELECT id, subscription_id, event_id, status, attempts, next_attempt_at, last_error,"
        " created_at, delivered_at FROM deliveries"
        " WHERE ($1::uuid IS NULL OR subscription_id = $1) AND ($2::text IS NULL OR status = $2)"
        " AND " + _OF_AGENCY % (4, 4) + " ORDER BY seq DESC LIMIT $3",
        subscription_id, status, limit, agency,
    )
    return [DeliveryView(**dict(r)) for r in rows]
