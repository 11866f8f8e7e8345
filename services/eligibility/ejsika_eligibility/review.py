"""The passing of time: reassess every household whose decision may have changed with the calendar alone.

A decision can change without any event: a child turns 7 and enters SD, 13 and enters SMP, leaves a
component's age, an elder turns 60, or the yearly recertification falls due. Each assessment stores
the earliest such day as `households.next_review_on`; once a day (and at start-up, which catches up
on the days a stopped service missed) every household whose day has come is reassessed, in
batches, each in its own transaction.

Rows are taken with FOR UPDATE SKIP LOCKED: a household a consumer is changing right now is left to
that consumer, whose own reassessment is as of its event; several replicas share the work without
waiting on each other. Within one run the batches walk the households in id order, so a household
whose new review day is still today (which the assessment should never give) is not taken twice.

A review carries no new welfare observation, so it neither grows nor breaks a family's run towards
mandiri (`domain.assessment.prior_high`), which moves only with the registry's welfare surveys.

What a replay reproduces, and what not: a replay from the start of the topics ends in the live state
*after the same events, as of the same days*: every decision of an event is taken as of that event's
day, and the run counts what the events fix, so the households, their facts, the decisions (their
graduation, proposed exit, run and fingerprint) and who may see them are the live ones. Reviews are
driven by the clock and are not in the topics: a replay does not take the decisions the live service
took on the days it reviewed (their history rows, `assessed_on`, the ages in their fingerprints and
their announcements). Its own review, as of the day it runs, brings each household to what live tells
the family that day (status, desil, components, amount, graduation, proposed exit, run).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from uuid import UUID

import asyncpg

from ejsika_runtime.outbox import Outbox
from ejsika_runtime.programme_time import ZONE, programme_today
from ejsika_runtime.unit_of_work import unit_of_work

from . import decisions

log = logging.getLogger(__name__)

# The first hour of the day in Asia/Jakarta: a little after midnight, when ages change.
RUN_AT = time(0, 5)

DUE = ("SELECT household_id FROM households WHERE next_review_on <= $1 AND household_id > $2"
       " ORDER BY household_id LIMIT $3 FOR UPDATE SKIP LOCKED")


async def review_due(pool: asyncpg.Pool, outbox: Outbox, today: date | None = None, batch: int = 2_000) -> int:
    """Reassess, as of `today` (Asia/Jakarta), every household due for review; answer how many were."""
    today = today or programme_today()
    after, reviewed = UUID(int=0), 0
    while True:
        async with unit_of_work(pool, outbox) as uow:
            ids = [r["household_id"] for r in await uow.conn.fetch(DUE, today, after, batch)]
            if ids:
                await decisions.reassess(uow, [(h, None) for h in ids], today=today)
        reviewed += len(ids)
        if len(ids) < batch:
            return reviewed
        after = ids[-1]


def seconds_until_next_run(now: datetime) -> float:
    """Seconds from `now` to the next RUN_AT in Asia/Jakarta."""
    local = now.astimezone(ZONE)
    run = datetime.combine(local.date(), RUN_AT, tzinfo=ZONE)
    if run <= local:
        run = datetime.combine(local.date() + timedelta(days=1), RUN_AT, tzinfo=ZONE)
    return (run - local).total_seconds()


def review_loop(pool_of: Callable[[], asyncpg.Pool], outbox: Outbox, batch: int = 2_000,
                clock: Callable[[], datetime] = lambda: datetime.now(ZONE)) -> Callable[[], Awaitable[None]]:
    """The daily review, at start-up and then each day shortly after midnight; a failed run is retried
    in a minute rather than a day later."""

    async def review_households() -> None:
        while True:
            try:
                reviewed = await review_due(pool_of(), outbox, batch=batch)
                if reviewed:
                    log.info("households reviewed as time passed", extra={"count": reviewed})
                wait = seconds_until_next_run(clock())
            except Exception:
                log.exception("review of households due failed")
                wait = 60.0
            await asyncio.sleep(wait)

    return review_households
