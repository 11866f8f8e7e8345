"""Notifications (table `deliveries`) and the webhook messages that carry them.

The consumer queues notifications (`queue`); the delivery workers form them into webhook messages,
lease, send and settle those; a notification's status follows its message's. A feed
subscription's notifications are served by `store.feed` instead and never join a message.
"""

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
from ..domain.webhooks import Notification

DeliveryStatus = Literal["pending", "delivered", "failed"]
STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


async def queue(conn: asyncpg.Connection, planned: Sequence[PlannedDelivery]) -> int:
    """Queue the notifications of a whole batch in one statement; returns how many were new."""
    if not planned:
        return 0
    return await conn.fetchval(
        "WITH queued AS ("
        " INSERT INTO deliveries"
        "  (subscription_id, event_id, payload, household_id, event_type, reference, occurred_at)"
        " SELECT r.subscription_id, r.event_id, r.payload, r.household_id,"
        "  coalesce(nullif(r.event_type, ''), s.event_type), nullif(r.reference, ''), r.occurred_at"
        " FROM unnest($1::uuid[], $2::uuid[], $3::json[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[])"
        "  WITH ORDINALITY AS r(subscription_id, event_id, payload, household_id, event_type, reference, occurred_at, n)"
        " JOIN subscriptions s ON s.id = r.subscription_id"
        # seq follows the batch's order (a join may reorder): an agency hears of a family's events in order
        " ORDER BY r.n"
        " ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING 1)"
        " SELECT count(*) FROM queued",
        [p.subscription_id for p in planned],
        [p.event_id for p in planned],
        [json.dumps(p.payload, separators=(",", ":")) for p in planned],
        [p.household_id for p in planned],
        [p.event_type for p in planned],
        [p.reference for p in planned],
        [p.occurred_at for p in planned],
    )


def wake(conn: asyncpg.Connection) -> Any:
    """Wake the delivery workers at commit (the channel of migration 001's trigger)."""
    return conn.execute("SELECT pg_notify(current_schema() || '_deliveries', '')")


@dataclass(frozen=True)
class Target:
    """A webhook subscription with something to send."""

    subscription_id: UUID
    agency: str


_SENDING = "s.active AND s.channel = 'webhook' AND s.secret_encrypted IS NOT NULL"


async def due_targets(conn: asyncpg.Connection, busy: Sequence[UUID]) -> list[Target]:
    """Active webhook subscriptions, except those in `busy`, with a message due or notifications
    not yet in a message.

    A subscription whose secret is still in clear (written before migration 004) waits until the
    start-up encrypts it, a moment later.
    """
    rows = await conn.fetch(
        f"SELECT s.id, s.agency FROM subscriptions s WHERE {_SENDING} AND s.id <> ALL($1::uuid[]) AND ("
        "  EXISTS (SELECT 1 FROM webhook_messages m WHERE m.subscription_id = s.id"
        "   AND m.status = 'pending' AND m.next_attempt_at <= now())"
        "  OR EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id"
        "   AND d.status = 'pending' AND d.message_id IS NULL))",
        list(busy),
    )
    return [Target(r["id"], r["agency"]) for r in rows]


async def seconds_until_due(conn: asyncpg.Connection, busy: Sequence[UUID]) -> float | None:
    """Seconds until the next pending message of an active subscription not in `busy` is due."""
    return await conn.fetchval(
        "SELECT greatest(0, extract(epoch FROM min(m.next_attempt_at) - now()))::float8"
        " FROM webhook_messages m JOIN subscriptions s ON s.id = m.subscription_id"
        f" WHERE m.status = 'pending' AND {_SENDING} AND m.subscription_id <> ALL($1::uuid[])",
        list(busy),
    )


@dataclass(frozen=True)
class Member:
    """A notification in a message, with what the record of processing needs."""

    notification: Notification
    household_id: UUID | None


@dataclass(frozen=True)
class Message:
    """A leased message, with where it goes and the secrets that sign it right now."""

    id: UUID
    subscription_id: UUID
    agency: str
    url: str
    attempts: int  # failed tries before this one
    members: list[Member]
    secrets_encrypted: list[bytes] = field(repr=False)  # the current first, then a rotated-out one


# What a notification sends, for `member` (its time: when it happened, else when it was queued).
NOTIFICATION_COLUMNS = ("d.id, d.event_type, d.reference, coalesce(d.occurred_at, d.created_at) AS time,"
                        " d.payload, d.household_id")


def member(row: asyncpg.Record) -> Member:
    return Member(Notification(row["id"], row["event_type"], row["reference"], row["time"],
                               json.loads(row["payload"])), row["household_id"])


async def next_message(conn: asyncpg.Connection, subscription_id: UUID, size: int, lease_s: float) -> Message | None:
    """Lease the subscription's next message: the oldest one due, else a new one formed of up to
    `size` notifications not yet in a message (oldest first). None if there is nothing to send.

    SKIP LOCKED lets replicas work side by side; the lease (next_attempt_at pushed ahead) keeps the
    message ours after its statement, without holding a connection during the POST. If this
    worker dies, the message falls due again when the lease ends, with the same members. It is
    one statement, that also reads where the message goes and its secrets as they are now (the hot
    path of delivery: a round trip saved is a round trip per message): a new message is formed only
    when no message with members was due.
    """
    rows = await conn.fetch(
        "WITH claimed AS ("
        " UPDATE webhook_messages SET next_attempt_at = now() + make_interval(secs => $3)"
        " WHERE id = (SELECT id FROM webhook_messages WHERE subscription_id = $1 AND status = 'pending'"
        "  AND next_attempt_at <= now() ORDER BY next_attempt_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, attempts),"
        " picked AS (SELECT id FROM deliveries WHERE subscription_id = $1 AND status = 'pending'"
        "  AND message_id IS NULL AND NOT EXISTS (SELECT 1 FROM claimed c JOIN deliveries d ON d.message_id = c.id)"
        "  ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED),"
        " formed AS (INSERT INTO webhook_messages (subscription_id, size, next_attempt_at)"
        "  SELECT $1, count(*), now() + make_interval(secs => $3) FROM picked HAVING count(*) > 0"
        "  RETURNING id, attempts),"
        " joined AS (UPDATE deliveries d SET message_id = f.id FROM formed f, picked p WHERE d.id = p.id"
        f"  RETURNING f.id AS message_id, f.attempts, d.seq, {NOTIFICATION_COLUMNS}),"
        " members AS ("
        f"  SELECT c.id AS message_id, c.attempts, d.seq, {NOTIFICATION_COLUMNS}"
        "   FROM claimed c JOIN deliveries d ON d.message_id = c.id"
        "  UNION ALL SELECT * FROM joined)"
        f" SELECT m.*, {_TARGET_COLUMNS} FROM members m JOIN subscriptions s ON s.id = $1 ORDER BY m.seq",
        subscription_id, size, lease_s,
    )
    if not rows:
        return None
    first = rows[0]
    secrets = [first["secret_encrypted"]] + ([first["previous"]] if first["previous"] is not None else [])
    return Message(
        id=first["message_id"], subscription_id=subscription_id, agency=first["agency"], url=first["url"],
        attempts=first["attempts"], members=[member(r) for r in rows], secrets_encrypted=secrets,
    )


# Where a message goes and what signs it, read with its members (`s`: the subscription).
_TARGET_COLUMNS = ("s.agency, s.url, s.secret_encrypted,"
                   " CASE WHEN s.previous_secret_until > now() THEN s.previous_secret_encrypted END AS previous")


async def record_shared(conn: asyncpg.Connection, channel: str, agency: str, members: Sequence[Member],
                        client_id: str | None = None) -> None:
    """What left for the agency, family by family and field by field (the record of processing)."""
    by_kind: dict[tuple[str, tuple[str, ...]], list[UUID]] = {}
    for member in members:
        if member.household_id is not None:
            fields = tuple(shared_fields(dict(member.notification.payload)))
            by_kind.setdefault((member.notification.event_type, fields), []).append(member.household_id)
    for (event_type, fields), households in by_kind.items():
        await processing.record(conn, processing.Processor(agency, "agency", client_id), "share", households,
                                fields, channel, f"{event_type} for {agency}")


@dataclass(frozen=True)
class Settled:
    notifications: int  # how many changed status
    lags_s: list[float]  # each one's seconds from queueing, when delivered
    message_s: float | None  # the message's seconds from forming, when delivered


async def settle_delivered(conn: asyncpg.Connection, message_id: UUID, status: int) -> Settled:
    """The agency acknowledged the message: it and its notifications are delivered (one statement)."""
    row = await conn.fetchrow(
        "WITH message AS (UPDATE webhook_messages SET status = 'delivered', attempts = attempts + 1,"
        "  last_status = $2, last_error = NULL, delivered_at = now() WHERE id = $1 AND status = 'pending'"
        "  RETURNING extract(epoch FROM clock_timestamp() - created_at)::float8 AS seconds),"
        " members AS (UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = now(),"
        "  last_error = NULL WHERE message_id = $1 AND status = 'pending'"
        "  RETURNING extract(epoch FROM clock_timestamp() - created_at)::float8 AS lag)"
        " SELECT (SELECT seconds FROM message) AS message_s, array(SELECT lag FROM members) AS lags",
        message_id, status,
    )
    return Settled(len(row["lags"]), list(row["lags"]), row["message_s"])


async def settle_failed(conn: asyncpg.Connection, message_id: UUID, error: str, status: int | None,
                        retry_in_s: float | None) -> int:
    """Count a failed try of the message: retried in `retry_in_s`, or failed for good when None.
    Returns how many notifications failed for good."""
    final = retry_in_s is None
    settled = await conn.fetchval(
        "UPDATE webhook_messages SET attempts = attempts + 1, last_error = $2, last_status = $3,"
        " status = CASE WHEN $4 THEN 'failed' ELSE 'pending' END,"
        " next_attempt_at = now() + make_interval(secs => coalesce($5::float8, 0))"
        " WHERE id = $1 AND status = 'pending' RETURNING true",
        message_id, error[:200], status, final, retry_in_s,
    )
    if not settled:
        return 0
    return await conn.fetchval(
        "WITH settled AS (UPDATE deliveries SET attempts = attempts + 1, last_error = $2,"
        " status = CASE WHEN $3 THEN 'failed' ELSE 'pending' END"
        " WHERE message_id = $1 AND status = 'pending' RETURNING status)"
        " SELECT count(*) FROM settled WHERE status = 'failed'",
        message_id, error[:200], final,
    )


async def disable(conn: asyncpg.Connection, subscription_id: UUID, reason: str) -> int:
    """Stop a subscription the platform may no longer deliver to (its endpoint answered 410 Gone):
    it is deactivated with the reason, and its notifications still waiting fail with it (kept, to
    be redelivered once the agency has a working subscription again). Returns how many failed."""
    await conn.execute("UPDATE subscriptions SET active = false, disabled_reason = $2 WHERE id = $1",
                       subscription_id, reason[:200])
    await conn.execute(
        "UPDATE webhook_messages SET status = 'failed', last_error = $2 WHERE subscription_id = $1 AND status = 'pending'",
        subscription_id, reason[:200],
    )
    return await conn.fetchval(
        "WITH failed AS (UPDATE deliveries SET status = 'failed', last_error = $2"
        " WHERE subscription_id = $1 AND status = 'pending' RETURNING 1) SELECT count(*) FROM failed",
        subscription_id, reason[:200],
    )


@dataclass(frozen=True)
class Requeued:
    messages: int
    notifications: int


async def redeliver(conn: asyncpg.Connection, message_id: UUID) -> int:
    """A failed message gets a fresh set of tries: the same message, members and webhook-id.
    Returns how many notifications it holds again pending (0 if it was not failed)."""
    requeued = await conn.fetchval(
        "UPDATE webhook_messages SET status = 'pending', attempts = 0, next_attempt_at = now()"
        " WHERE id = $1 AND status = 'failed' RETURNING true",
        message_id,
    )
    if not requeued:
        return 0
    count = await conn.fetchval(
        "WITH requeued AS (UPDATE deliveries SET status = 'pending', attempts = 0"
        " WHERE message_id = $1 AND status = 'failed' RETURNING 1) SELECT count(*) FROM requeued",
        message_id,
    )
    await wake(conn)
    return count


async def requeue_failed(conn: asyncpg.Connection, subscription_id: UUID) -> Requeued:
    """Every failed message of the subscription is redelivered (each keeping its webhook-id), and
    failed notifications in no message (older rows) are queued again."""
    messages = await conn.fetchval(
        "WITH requeued AS (UPDATE webhook_messages SET status = 'pending', attempts = 0, next_attempt_at = now()"
        " WHERE subscription_id = $1 AND status = 'failed' RETURNING 1) SELECT count(*) FROM requeued",
        subscription_id,
    )
    notifications = await conn.fetchval(
        "WITH requeued AS (UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now()"
        " WHERE subscription_id = $1 AND status = 'failed' RETURNING 1) SELECT count(*) FROM requeued",
        subscription_id,
    )
    if notifications:
        await wake(conn)
    return Requeued(messages, notifications)


async def pending_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Pending notifications per agency (the label of the metrics: agencies are few, subscriptions grow)."""
    rows = await conn.fetch(
        "SELECT s.agency, count(*) AS n FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id"
        " WHERE d.status = 'pending' GROUP BY 1"
    )
    return {r["agency"]: r["n"] for r in rows}


async def prune_delivered(conn: asyncpg.Connection, older_than_s: float, limit: int = 10_000) -> int:
    """Delete delivered notifications (and so the copies of data they hold) past the retention,
    then the delivered messages left without members."""
    gone = await conn.fetchval(
        "WITH gone AS (DELETE FROM deliveries WHERE id IN ("
        " SELECT id FROM deliveries WHERE status = 'delivered'"
        " AND delivered_at < now() - make_interval(secs => $1) LIMIT $2) RETURNING 1)"
        " SELECT count(*) FROM gone",
        older_than_s, limit,
    )
    await conn.execute(
        "DELETE FROM webhook_messages m WHERE m.id IN (SELECT id FROM webhook_messages WHERE status = 'delivered'"
        " AND delivered_at < now() - make_interval(secs => $1) LIMIT $2)"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)",
        older_than_s, limit,
    )
    return gone


@dataclass(frozen=True)
class DeliveryView:
    """A notification as shown to operators: no payload."""

    id: UUID
    subscription_id: UUID
    event_id: UUID
    message_id: UUID | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


_OF_AGENCY = "($%d::text IS NULL OR subscription_id IN (SELECT id FROM subscriptions WHERE agency = $%d))"


async def status_counts(conn: asyncpg.Connection, subscription_id: UUID | None, agency: str | None = None) -> dict[str, int]:
    """Notifications by status, of one subscription or all (of one agency's subscriptions when given)."""
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
    """The latest notifications; a notification in a message shows the message's next attempt."""
    rows = await conn.fetch(
        "SELECT d.id, d.subscription_id, d.event_id, d.message_id, d.status, d.attempts,"
        " coalesce(m.next_attempt_at, d.next_attempt_at) AS next_attempt_at, d.last_error,"
        " d.created_at, d.delivered_at FROM deliveries d LEFT JOIN webhook_messages m ON m.id = d.message_id"
        " WHERE ($1::uuid IS NULL OR d.subscription_id = $1) AND ($2::text IS NULL OR d.status = $2)"
        " AND " + _OF_AGENCY.replace("subscription_id IN", "d.subscription_id IN") % (4, 4)
        + " ORDER BY d.seq DESC LIMIT $3",
        subscription_id, status, limit, agency,
    )
    return [DeliveryView(**dict(r)) for r in rows]


@dataclass(frozen=True)
class MessageView:
    id: UUID
    subscription_id: UUID
    status: str
    size: int
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    seq: int


async def message(conn: asyncpg.Connection, message_id: UUID) -> tuple[MessageView, str] | None:
    """A message and its subscription's agency."""
    row = await conn.fetchrow(
        "SELECT m.id, m.subscription_id, m.status, m.size, m.attempts, m.next_attempt_at, m.last_status,"
        " m.last_error, m.created_at, m.delivered_at, m.seq, s.agency"
        " FROM webhook_messages m JOIN subscriptions s ON s.id = m.subscription_id WHERE m.id = $1",
        message_id,
    )
    if row is None:
        return None
    values = dict(row)
    agency = values.pop("agency")
    return MessageView(**values), agency


async def messages(
    conn: asyncpg.Connection, *, subscription_id: UUID | None, status: str | None, agency: str | None,
    before_seq: int | None, limit: int,
) -> list[MessageView]:
    """Messages, the latest first (a keyset page: those before `before_seq`)."""
    rows = await conn.fetch(
        "SELECT id, subscription_id, status, size, attempts, next_attempt_at, last_status, last_error,"
        " created_at, delivered_at, seq FROM webhook_messages"
        " WHERE ($1::uuid IS NULL OR subscription_id = $1) AND ($2::text IS NULL OR status = $2)"
        " AND " + _OF_AGENCY % (3, 3) + " AND ($4::bigint IS NULL OR seq < $4) ORDER BY seq DESC LIMIT $5",
        subscription_id, status, agency, before_seq, limit,
    )
    return [MessageView(**dict(r)) for r in rows]
