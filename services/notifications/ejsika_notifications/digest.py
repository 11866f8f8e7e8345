"""The daily digest, and the daily computation of derived facts.

A subscription with frequency `daily_digest` is not told of each matching notice as it comes: its
notifications wait (table `digest_entries`) under the programme day they were matched, and once
that day is over the digest job queues the whole day of each subscription together, in one
statement, so the delivery forms them into as few webhook messages as its batch size allows (and
the feed serves them together). Every replica may run the job: an entry is taken by one DELETE,
and the queue ignores a notification queued twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone

import asyncpg

from ejsika_runtime.programme_time import programme_date

from . import derived, families
from .domain.deliveries import PlannedDelivery
from .store import awaiting, deliveries

log = logging.getLogger(__name__)


async def hold(conn: asyncpg.Connection, planned: Sequence[PlannedDelivery], day: date) -> int:
    """Keep the notifications of digest subscriptions for the digest of `day`; returns how many were new."""
    if not planned:
        return 0
    return await conn.fetchval(
        "WITH held AS ("
        " INSERT INTO digest_entries (subscription_id, event_id, household_id, reference, event_type, occurred_at,"
        "  payload, digest_day)"
        " SELECT *, $8::date FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],"
        "  $6::timestamptz[], $7::json[])"
        " ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING 1)"
        " SELECT count(*) FROM held",
        [p.subscription_id for p in planned], [p.event_id for p in planned], [p.household_id for p in planned],
        [p.reference for p in planned], [p.event_type for p in planned], [p.occurred_at for p in planned],
        [json.dumps(p.payload, separators=(",", ":")) for p in planned], day,
    )


async def release(conn: asyncpg.Connection, today: date) -> int:
    """Queue every entry of the days before `today` (each subscription's day together); returns
    how many notifications were queued. One transaction: taken and queued, or neither."""
    async with conn.transaction():
        rows = await conn.fetch(
            "DELETE FROM digest_entries WHERE digest_day < $1"
            " RETURNING subscription_id, event_id, household_id, reference, event_type, occurred_at, payload,"
            " digest_day",
            today)
        if not rows:
            return 0
        # In the order of the day, then of the notices: a day's digest keeps together when queued.
        rows = sorted(rows, key=lambda r: (r["digest_day"], r["subscription_id"], r["occurred_at"] or datetime.min.replace(tzinfo=timezone.utc)))
        return await deliveries.queue(conn, [
            PlannedDelivery(r["subscription_id"], r["event_id"], r["household_id"], json.loads(r["payload"]),
                            r["reference"], r["event_type"], r["occurred_at"]) for r in rows
        ])


async def run(pool: asyncpg.Pool, notify, *, interval_s: float = 300.0,
              now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
    """Forever: release the digests of the days past, and once a programme day compute the derived
    facts of every active family (`notify(conn, notices, families)` queues what they match)."""
    computed: date | None = None
    while True:
        with contextlib.suppress(asyncpg.PostgresError, OSError, asyncio.TimeoutError):
            moment = now()
            today = programme_date(moment)
            async with pool.acquire() as conn:
                if computed != today:
                    await derive(conn, notify, moment)
                    computed = today
                released = await release(conn, today)
                await sweep(conn, notify)
            if released:
                log.info("digests released", extra={"notifications": released})
        await asyncio.sleep(interval_s)


async def sweep(conn: asyncpg.Connection, notify) -> int:
    """Match the notices still waiting for a family projected since (see `store.awaiting`), and
    give up on those whose family never came."""
    async with conn.transaction():
        notices = await awaiting.release_known(conn)
        if notices:
            await notify(conn, notices, await families.load(conn, {n.household_id for n in notices}))
        if expired := await awaiting.expire(conn):
            log.warning("notices dropped: their family never came", extra={"notifications": expired})
    return len(notices)


async def derive(conn: asyncpg.Connection, notify, at: datetime) -> int:
    """The derived facts of the day for every active family, matched and queued in one transaction."""
    first, last = derived.birth_window(programme_date(at))
    async with conn.transaction():
        found = await families.active_with_pupils_born_between(conn, first, last)
        notices = derived.entering_sma(found.values(), at)
        uninsured = await families.active_without_health_insurance(conn)
        notices += derived.without_health_insurance(uninsured.values(), at)
        await notify(conn, notices, {**found, **uninsured})
    return len(notices)
