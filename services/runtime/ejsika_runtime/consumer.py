"""Batch consumers: one transaction per batch (inbox + effects + outbox), offsets committed after.

A batch is parsed first; records that are not a valid event of the topic become dead letters at
once (retrying cannot fix them). The valid ones are applied in one transaction. If that fails
with an error of the handler, each event is retried alone, a bounded number of times, and the ones
that still fail become dead letters, so one poison message never blocks its partition. If the
database itself is unreachable nothing is dead-lettered: the batch is rewound and tried again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from ejsika_contracts import Event, Topic

from . import inbox
from .dead_letters import DeadLetter, describe
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


@dataclass
class BatchConsumer:
    topic: Topic
    group: str
    handler: Handler
    pool_of: Callable[[], asyncpg.Pool]
    outbox: Outbox
    metrics: RuntimeMetrics
    max_attempts: int = 3
    retry_backoff_s: float = 0.5

    async def process(self, records: Sequence[ConsumerRecord]) -> None:
        valid: list[tuple[ConsumerRecord, Event]] = []
        dead: list[DeadLetter] = []
        for record in records:
            try:
                valid.append((record, self.topic.parse(record.value or b"")))
            except (ValidationError, ValueError) as error:
                dead.append(DeadLetter(record, "invalid", describe(error), 1, self.group))
        try:
            await self._apply(valid, dead)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as error:
            log.warning("batch of %d failed (%s); retrying its events one by one", len(valid), type(error).__name__)
            await self._apply_one_by_one(valid, dead)

    async def _apply(self, items: Sequence[tuple[ConsumerRecord, Event]], dead: Sequence[DeadLetter]) -> None:
        async with self.pool_of().acquire() as conn, conn.transaction():
            events = [event for _, event in items]
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
            await self.outbox.add_records(
                conn, [(self.topic.dead_letter, d.record.key, d.record.value or b"", d.headers()) for d in dead]
            )
        self.metrics.applied(self.topic.name, len(fresh), len(events) - len(fresh))
        for letter in dead:
            self.metrics.dead_letter(self.topic.name, letter.reason)
            log.error("dead-lettered %s[%d]@%d: %s", letter.record.topic, letter.record.partition,
                      letter.record.offset, letter.error)
        if log.isEnabledFor(logging.INFO):
            for event in fresh:
                token = correlation_id.set(str(event.correlation_id))
                log.info("applied", extra={"event_id": str(event.id), "event_type": event.type})
                correlation_id.reset(token)

    async def _apply_one_by_one(self, items: Sequence[tuple[ConsumerRecord, Event]], dead: list[DeadLetter]) -> None:
        for record, event in items:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    await self._apply([(record, event)], ())
                    break
                except INFRASTRUCTURE_ERRORS:
                    raise
                except Exception as error:
                    if attempt == self.max_attempts:
                        dead.append(DeadLetter(record, "handler_failed", describe(error), attempt, self.group))
                    else:
                        await asyncio.sleep(self.retry_backoff_s * attempt)
        await self._apply([], dead)
