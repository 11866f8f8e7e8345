"""One database transaction holding a state change and the events it emits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from ejsika_contracts import Event

from .outbox import Outbox


@dataclass
class UnitOfWork:
    conn: asyncpg.Connection
    events: list[Event] = field(default_factory=list)

    def emit(self, *events: Event) -> None:
        self.events.extend(events)

    def emit_all(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, outbox: Outbox) -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn)
        yield uow
        await outbox.add(conn, uow.events)
