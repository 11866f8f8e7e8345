"""Batch consumers: one transaction per batch (inbox + effects + outbox), offsets committed after.

A batch is parsed first; records that are not a valid event of the topic become dead letters at
once (retrying cannot fix them). The valid ones are applied in one transaction. If that fails,
what failed decides what happens:

- **Transient** (`transient`: the database unreachable or restarting, a deadlock or serialization
  failure, a lock not granted, a read-only standby, a timeout): nothing is dead-lettered. The batch
  is rewound (its offsets are not committed) and read again after a pause that doubles up to
  `pause_max_s`.
- **Otherwise** the events are tried one by one, each in a savepoint of one transaction (so each
  sees the effects of the events before it), `max_attempts` times without waiting. If more than
  `systemic_ratio` of them fail (and at least `systemic_least` failed since the last success, this
  batch and the ones before it), the failure is **systemic** (a deploy bug, an old replica against a
  migrated schema): the pass is rolled back, nothing is dead-lettered, the batch is rewound and the
  consumer pauses with back-off, with `ejsika_consumer_paused` at 1 (alert EjsikaConsumerPaused).
  It resumes by itself: the batch is tried again after each pause, and applied once the cause is
  fixed. Otherwise the failing events are **poison**: dead-lettered, the others applied, the offsets
  committed, and the partition moves on.
- The one-by-one pass is bounded (`isolation_budget_s`, well inside Kafka's max.poll.interval.ms,
  300 s, past which the consumer would leave its group): what the pass decided is committed and the
  rest of the batch is read again at once. Dead letters are recorded (`holds`), so a record read
  again after a rewind is never dead-lettered twice.

Order: the events of a key (a household) on a topic are applied in their order, also across a
dead letter and its replay: while a key has a dead letter this consumer has not applied since,
its later events are parked behind it (dead-lettered with reason `parked_behind`) and a replay
applies them oldest first (`holds`). A dead letter forgotten for good (`holds.forget`) lets the
ones behind it through. Across topics, handlers guard with the household `version` of registry
events, as monitoring's members and eligibility's inputs do.

A lone failing event after a success is poison at once; a second one with no success in between is
treated as systemic until an event succeeds beside it, so a slow trickle of events under a deploy
bug dead-letters at most one of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from ejsika_contracts import Event, Topic

from . import holds as held
from . import inbox
from .dead_letters import DeadLetter, describe
from .holds import Arrival, Verdict
from .logs import correlation_id
from .metrics import RuntimeMetrics
from .outbox import Outbox
from .unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

Handler = Callable[[UnitOfWork, list[Event]], Awaitable[None]]


def by_type(handlers: Mapping[type[Event], Handler]) -> Handler:
    """One handler for a topic of several events: each event goes to the handler of its class.

    Consecutive events of one class go together, in the batch's order, so a household's events are
    still applied in the order they happened. Events of a class without a handler are not this
    service's business: the inbox still records them as seen.
    """

    async def handle(uow: UnitOfWork, events: list[Event]) -> None:
        run: list[Event] = []
        current: Handler | None = None
        for event in events:
            handler = handlers.get(type(event))
            if handler is not current and run:
                await current(uow, run)
                run = []
            current = handler
            if handler is not None:
                run.append(event)
        if run and current is not None:
            await current(uow, run)

    return handle

# Errors that say the database (or the network to it) is down, not that the event is bad.
INFRASTRUCTURE_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    # the server ended a session left idle in its transaction (EJSIKA_DB_IDLE_IN_TRANSACTION_TIMEOUT_S)
    asyncpg.IdleInTransactionSessionTimeoutError,
)
# SQLSTATE classes of a database that cannot serve now: connection exception, transaction rollback
# (deadlock, serialization failure), insufficient resources, operator intervention (shutdown, cancel).
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})
# lock not available (lock_timeout, NOWAIT); read-only transaction (a standby, during a failover).
TRANSIENT_SQLSTATES = frozenset({"55P03", "25006"})


def transient(error: BaseException) -> bool:
    """The error (or one it was raised from or while handling) says "try again later", not "bad event"."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, INFRASTRUCTURE_ERRORS):
            return True
        state = getattr(current, "sqlstate", None) if isinstance(current, asyncpg.PostgresError) else None
        if state and (state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES):
            return True
        current = current.__cause__ or current.__context__
    return False


def systemic(failures: int, tried: int, streak: int, ratio: float, least: int) -> bool:
    """More than `ratio` of the events tried failed, and `least` failed with no success between
    (`streak`: failures of earlier batches since the last success)."""
    return failures > ratio * tried and failures + streak >= least


class SystemicFailure(Exception):
    """Too many of a batch's events fail: the cause is not in them. Nothing was dead-lettered."""


class PassCutShort(Exception):
    """The one-by-one pass ran out of time; what it decided is committed, the rest comes again."""


@dataclass
class BatchConsumer:
    topic: Topic
    group: str
    handler: Handler
    pool_of: Callable[[], asyncpg.Pool]
    outbox: Outbox
    metrics: RuntimeMetrics
    max_attempts: int = 3
    retry_backoff_s: float = 0.5  # the first pause after a rewind; doubled per rewind in a row
    pause_max_s: float = 30.0
    systemic_ratio: float = 0.5
    systemic_least: int = 2
    isolation_budget_s: float = 60.0
    _streak: int = field(default=0, init=False)  # events failed since the last success
    _rewinds: int = field(default=0, init=False)  # rewinds in a row

    async def process(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply a batch, or raise (after a pause) so that it is rewound and read again."""
        arrivals = [self._read(record) for record in records]
        try:
            try:
                await self._apply(arrivals)
                self._streak = 0
            except Exception as error:
                if transient(error):
                    raise
                log.warning("batch of %d failed (%s); trying its events one by one", len(arrivals),
                            type(error).__name__)
                await self._isolate(arrivals)
        except Exception as error:
            await self._rewind(error)
            raise
        self._resumed()

    def _read(self, record: ConsumerRecord) -> Arrival:
        try:
            return Arrival(record, self.topic.parse(record.value or b""))
        except (ValidationError, ValueError) as error:
            return Arrival(record, None, describe(error))

    async def _apply(self, arrivals: Sequence[Arrival]) -> None:
        async with self.pool_of().acquire() as conn, conn.transaction():
            to_apply: Sequence[Arrival] = arrivals
            letters: list[DeadLetter] = []
            claimed = await self._claim_unless_held(conn, arrivals)
            if claimed is not None:  # nothing held concerns the batch: every event is applied
                fresh = await self._run(conn, [a.event for a in arrivals], claimed)
            else:
                holds = await held.load(conn, self.topic.name, self.group, arrivals)
                to_apply = []
                for arrival in arrivals:
                    verdict = holds.admit(arrival)
                    if verdict is Verdict.APPLY:
                        to_apply.append(arrival)
                        holds.applied(arrival)
                    elif verdict is not Verdict.PASS:
                        letters.append(self._letter(arrival, verdict))
                fresh = await self._run(conn, [a.event for a in to_apply])
                await self._write(conn, letters, holds)
        self._report(fresh, len(to_apply) - len(fresh), letters)

    async def _claim_unless_held(self, conn: asyncpg.Connection, arrivals: Sequence[Arrival]) -> set[UUID] | None:
        """The common batch in one statement: no hold (`holds`) concerns it, so each event is claimed
        in the inbox at once; answers the ids claimed for the first time. None, having claimed nothing,
        when a hold concerns the batch or a record is not a plain event (invalid, or a replay): the
        holds then decide, record by record, as `holds.load` and `Holds.admit` do.

        The holds' read and the inbox's claim were two round trips of every batch, the first of them
        almost always answering nothing.
        """
        if any(a.event is None or a.replayed or a.replayed_for is not None for a in arrivals):
            return None
        rows = await conn.fetch(
            "WITH held AS (SELECT 1 FROM dead_letter_holds WHERE topic = $1"
            "  AND (key = ANY($2::bytea[]) OR letter = ANY($3::bytea[])) LIMIT 1),"
            " claimed AS (INSERT INTO inbox (event_id, topic) SELECT unnest($4::uuid[]), $1"
            "  WHERE NOT EXISTS (SELECT 1 FROM held) ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
            " SELECT event_id FROM claimed UNION ALL SELECT NULL FROM held",
            self.topic.name, list({a.key for a in arrivals if a.key is not None}), [a.letter for a in arrivals],
            list(dict.fromkeys(a.event.id for a in arrivals)),
        )
        ids = {row["event_id"] for row in rows}
        return None if None in ids else ids

    async def _isolate(self, arrivals: Sequence[Arrival]) -> None:
        """Each event alone, in order, in one transaction; see the module's docstring."""
        deadline = time.monotonic() + self.isolation_budget_s
        valid = sum(1 for a in arrivals if a.event is not None)
        failures = tried = duplicates = since_success = 0
        succeeded = cut_short = False
        fresh: list[Event] = []
        letters: list[DeadLetter] = []
        async with self.pool_of().acquire() as conn, conn.transaction():
            holds = await held.load(conn, self.topic.name, self.group, arrivals)
            for arrival in arrivals:
                if time.monotonic() > deadline:
                    cut_short = True
                    break
                verdict = holds.admit(arrival)
                if verdict is Verdict.PASS:
                    continue
                if verdict is not Verdict.APPLY:
                    letters.append(self._letter(arrival, verdict))
                    continue
                tried += 1
                outcome = await self._alone(conn, arrival.event)
                if isinstance(outcome, list):
                    fresh += outcome
                    duplicates += not outcome
                    holds.applied(arrival)
                    succeeded, since_success = True, 0
                    continue
                failures += 1
                since_success += 1
                holds.failed(arrival, "handler_failed")
                letters.append(DeadLetter(arrival.record, "handler_failed", describe(outcome), self.max_attempts,
                                          self.group))
                # `valid` bounds `tried` from above: past this, the batch is systemic whatever follows.
                if systemic(failures, valid, 0 if succeeded else self._streak, self.systemic_ratio,
                            self.systemic_least):
                    self._streak += failures
                    raise SystemicFailure(f"{failures} of {tried} events failed alone; the last: "
                                          f"{describe(outcome)}") from outcome
            if systemic(failures, tried, 0 if succeeded else self._streak, self.systemic_ratio, self.systemic_least):
                self._streak += failures
                raise SystemicFailure(f"{failures} of {tried} events failed alone")
            await self._write(conn, letters, holds)
        self._streak = since_success if succeeded else self._streak + failures
        self._report(fresh, duplicates, letters)
        if cut_short:
            raise PassCutShort(f"one-by-one pass stopped after {self.isolation_budget_s:g} s")

    async def _alone(self, conn: asyncpg.Connection, event: Event) -> list[Event] | Exception:
        """Apply one event in a savepoint: the events applied (none: a duplicate), or its last error."""
        error: Exception | None = None
        for _ in range(self.max_attempts):
            try:
                async with conn.transaction():
                    return await self._run(conn, [event])
            except Exception as failed:
                if transient(failed):
                    raise
                error = failed
        return error

    async def _run(self, conn: asyncpg.Connection, events: Sequence[Event],
                   fresh_ids: set[UUID] | None = None) -> list[Event]:
        """Claim the events in the inbox (unless `fresh_ids` says which were claimed for the first
        time already) and hand the new ones to the handler; answer the new ones."""
        if fresh_ids is None:
            fresh_ids = await inbox.claim(conn, self.topic.name, [e.id for e in events])
        fresh, seen = [], set()
        for event in events:
            if event.id in fresh_ids and event.id not in seen:
                seen.add(event.id)
                fresh.append(event)
        uow = UnitOfWork(conn)
        if fresh:
            await self.handler(uow, fresh)
        await self.outbox.add(conn, uow.events)
        return fresh

    def _letter(self, arrival: Arrival, verdict: Verdict) -> DeadLetter:
        if verdict is Verdict.INVALID:
            return DeadLetter(arrival.record, "invalid", arrival.invalid or "not an event of the topic", 1, self.group)
        return DeadLetter(arrival.record, "parked_behind", "waits behind an older dead letter of its key", 0,
                          self.group)

    async def _write(self, conn: asyncpg.Connection, letters: Sequence[DeadLetter], holds: held.Holds) -> None:
        await self.outbox.add_records(
            conn, [(self.topic.dead_letter, d.record.key, d.record.value or b"", d.headers()) for d in letters])
        await held.save(conn, self.topic.name, holds)

    def _report(self, fresh: Sequence[Event], duplicates: int, letters: Sequence[DeadLetter]) -> None:
        self.metrics.applied(self.topic.name, len(fresh), duplicates)
        for letter in letters:
            self.metrics.dead_letter(self.topic.name, letter.reason)
            log.error("dead-lettered %s[%d]@%d (%s): %s", letter.record.topic, letter.record.partition,
                      letter.record.offset, letter.reason, letter.error)
        if log.isEnabledFor(logging.INFO):
            for event in fresh:
                token = correlation_id.set(str(event.correlation_id))
                log.info("applied", extra={"event_id": str(event.id), "event_type": event.type})
                correlation_id.reset(token)

    async def _rewind(self, error: Exception) -> None:
        """Count, log and wait before the batch is given back to Kafka (the subscriber NACKs it)."""
        if isinstance(error, PassCutShort):
            cause, pause = "cut_short", 0.0
        else:
            cause = "systemic" if isinstance(error, SystemicFailure) else "transient" if transient(error) else "other"
            pause = min(self.pause_max_s, self.retry_backoff_s * 2 ** min(self._rewinds, 16))
            self._rewinds += 1
            self.metrics.consumer_paused(self.topic.name, True)
        self.metrics.rewound(self.topic.name, cause)
        log.log(logging.WARNING if cause == "cut_short" else logging.ERROR,
                "%s: batch rewound (%s), read again in %.1f s: %s", self.topic.name, cause, pause, describe(error))
        await asyncio.sleep(pause)

    def _resumed(self) -> None:
        if self._rewinds:
            log.warning("%s: consuming again after %d rewind(s)", self.topic.name, self._rewinds)
            self._rewinds = 0
            self.metrics.consumer_paused(self.topic.name, False)
