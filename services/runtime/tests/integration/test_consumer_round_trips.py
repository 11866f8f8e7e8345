"""A consumer's batch with nothing held reads the holds and claims the inbox in one statement; a
batch that a hold concerns still goes record by record through the holds (on the real PostgreSQL)."""

from __future__ import annotations

import contextlib
import uuid

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from ejsika_contracts import VISIT, VisitScheduled, VisitScheduledData
from ejsika_runtime.consumer import BatchConsumer
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.holds import letter_of
from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.outbox import Outbox

pytestmark = pytest.mark.infra


def visit(household: uuid.UUID | None = None) -> VisitScheduled:
    household = household or uuid.uuid4()
    return VisitScheduled(source="test", subject=str(household), correlation_id=uuid.uuid4(),
                          data=VisitScheduledData(household_id=household, visit_id=uuid.uuid4(),
                                                  kind="first_visit", due_date="2026-12-01"))


def records(events) -> list[ConsumerRecord]:
    return [ConsumerRecord(VISIT.name, 0, offset, 0, 0, e.key(), e.to_bytes(), None, 0, 0, [])
            for offset, e in enumerate(events)]


class Counted:
    """A pool whose connections note every statement they send (asyncpg's query logger)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.statements = pool, []

    @contextlib.asynccontextmanager
    async def acquire(self):
        async with self.pool.acquire() as conn:
            conn.add_query_logger(self._note)
            try:
                yield conn
            finally:
                conn.remove_query_logger(self._note)

    def _note(self, record) -> None:
        self.statements.append(record.query)


@pytest.fixture
async def consumer(database_url, tmp_path):
    (tmp_path / "001_applied.sql").write_text("CREATE TABLE applied (event_id uuid NOT NULL);")
    name = f"trips_{uuid.uuid4().hex[:6]}"
    pool = await create_pool(database_url, name, size=2)
    await migrate(pool, name, tmp_path)
    counted = Counted(pool)

    async def handler(uow, events) -> None:
        await uow.conn.execute("INSERT INTO applied SELECT unnest($1::uuid[])", [e.id for e in events])

    registry = CollectorRegistry()
    yield BatchConsumer(topic=VISIT, group=name, handler=handler, pool_of=lambda: counted,
                        outbox=Outbox(name), metrics=RuntimeMetrics(registry, name)), counted, pool, registry
    await pool.execute(f'DROP SCHEMA "{name}" CASCADE')
    await pool.close()


def touching(statements: list[str], *tables: str) -> list[str]:
    return [s for s in statements if any(t in s for t in tables)]


async def test_a_batch_nothing_holds_is_checked_and_claimed_in_one_statement_and_applied_once(consumer):
    batch_consumer, counted, pool, registry = consumer
    events = [visit() for _ in range(3)]
    await batch_consumer.process(records(events))
    assert len(touching(counted.statements, "dead_letter_holds", "inbox")) == 1, \
        "the holds' check and the inbox's claim are one statement"
    assert sorted(await pool.fetch("SELECT event_id FROM applied")) == sorted((e.id,) for e in events)

    await batch_consumer.process(records(events))  # redelivered (a rewind, a rebalance)
    assert await pool.fetchval("SELECT count(*) FROM applied") == 3, "each event applied once"
    labels = {"service": batch_consumer.group, "topic": VISIT.name}
    assert registry.get_sample_value("ejsika_events_applied_total", labels) == 3
    assert registry.get_sample_value("ejsika_events_duplicate_total", labels) == 3


async def test_a_batch_with_a_held_household_parks_its_event_and_claims_only_the_others(consumer):
    batch_consumer, counted, pool, _ = consumer
    held_household = uuid.uuid4()
    earlier, later, other = visit(held_household), visit(held_household), visit()
    # An earlier event of the household was dead-lettered: its later ones wait behind it.
    await pool.execute("INSERT INTO dead_letter_holds (topic, key, letter, event_id, reason)"
                       " VALUES ($1, $2, $3, $4, 'handler_failed')",
                       VISIT.name, earlier.key(), letter_of(earlier.key(), earlier.to_bytes()), earlier.id)
    await batch_consumer.process(records([later, other]))

    assert [r["event_id"] for r in await pool.fetch("SELECT event_id FROM applied")] == [other.id]
    claimed = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM inbox")}
    assert claimed == {other.id}, "the parked event is not claimed: its replay will apply it"
    parked = await pool.fetch("SELECT event_id, reason FROM dead_letter_holds ORDER BY seq")
    assert [(r["event_id"], r["reason"]) for r in parked] == [(earlier.id, "handler_failed"),
                                                               (later.id, "parked_behind")]
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", VISIT.dead_letter) == 1
