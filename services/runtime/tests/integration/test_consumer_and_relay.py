"""The shared plumbing on a real PostgreSQL and Kafka: inbox, poison messages, outbox relay."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from ejsika_contracts import VISIT, VisitScheduled, VisitScheduledData
from ejsika_runtime.consumer import BatchConsumer
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.kafka import new_producer
from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.relay import OutboxRelay
from ejsika_runtime.unit_of_work import unit_of_work

NO_MIGRATIONS = Path(__file__).parent / "no-migrations"


@pytest.fixture(scope="module")
async def schema(database_url):
    name = f"plumbing_{uuid.uuid4().hex[:6]}"
    pool = await create_pool(database_url, name, size=4)
    await migrate(pool, name, NO_MIGRATIONS)
    yield name, pool
    await pool.close()


def visit_event(household: uuid.UUID) -> VisitScheduled:
    return VisitScheduled(source="test", subject=str(household), correlation_id=uuid.uuid4(),
                          data=VisitScheduledData(household_id=household, visit_id=uuid.uuid4(),
                                                  kind="first_visit", due_date="2026-12-01"))


def record(event_bytes: bytes, offset: int, key: bytes = b"k") -> ConsumerRecord:
    return ConsumerRecord(VISIT.name, 0, offset, 0, 0, key, event_bytes, None, len(event_bytes), len(event_bytes),
                          [("ce_type", b"visit.scheduled")])


def keyed(event: VisitScheduled, offset: int) -> ConsumerRecord:
    """The event's record as the relay publishes it: keyed by its household."""
    return record(event.to_bytes(), offset, event.subject.encode())


async def test_migrations_are_idempotent(schema, database_url):
    name, pool = schema
    assert await migrate(pool, name, NO_MIGRATIONS) == []


async def test_redelivered_events_take_effect_once_and_poison_goes_to_the_dead_letter_outbox(schema):
    name, pool = schema
    await pool.execute("CREATE TABLE IF NOT EXISTS applied (seq bigserial, event_id uuid)")

    async def handler(uow, events):
        for event in events:
            await uow.conn.execute("INSERT INTO applied (event_id) VALUES ($1)", event.id)
            if event.data.kind == "monthly_session":
                raise ValueError("this handler cannot apply monthly sessions")

    consumer = BatchConsumer(topic=VISIT, group="test", handler=handler, pool_of=lambda: pool, outbox=Outbox(name),
                             metrics=RuntimeMetrics(CollectorRegistry(), "test"), max_attempts=2,
                             retry_backoff_s=0.01)
    good, other = visit_event(uuid.uuid4()), visit_event(uuid.uuid4())
    poison = visit_event(uuid.uuid4()).model_copy(update={"data": other.data.model_copy(update={"kind": "monthly_session"})})
    batch = [keyed(good, 1), record(b"{oops", 2), keyed(poison, 3), keyed(other, 4)]
    await consumer.process(batch)
    await consumer.process(batch)  # the whole batch again, as after a crash before the offset commit

    applied = [r["event_id"] for r in await pool.fetch("SELECT event_id FROM applied ORDER BY seq")]
    assert applied == [good.id, other.id], "rolled-back attempts leave no effect, redeliveries add none"
    rows = await pool.fetch("SELECT topic, value, headers FROM outbox WHERE topic = $1 ORDER BY id", VISIT.dead_letter)
    reasons = [dict(tuple(h) for h in json.loads(r["headers"]))["ejsika-dlq-reason"] for r in rows]
    assert reasons == ["invalid", "handler_failed"], "a redelivered dead letter is not dead-lettered twice"
    assert rows[0]["value"] == b"{oops" and rows[1]["value"] == poison.to_bytes()


async def test_relay_publishes_in_order_per_household_and_marks_rows_sent(schema, database_url, kafka_bootstrap):
    name, pool = schema
    households = [uuid.uuid4() for _ in range(5)]
    events = [visit_event(households[i % 5]) for i in range(300)]
    for start in range(0, 300, 50):
        async with unit_of_work(pool, Outbox(name)) as uow:
            uow.emit_all(events[start:start + 50])

    producer = new_producer(kafka_bootstrap, "test-relay")
    await producer.start()
    relay = OutboxRelay(database_url=database_url, schema=name, producer=producer,
                        metrics=RuntimeMetrics(CollectorRegistry(), "test"), batch_size=128, poll_interval_s=0.2)
    task = asyncio.create_task(relay.run())
    consumer = AIOKafkaConsumer(VISIT.name, bootstrap_servers=kafka_bootstrap, group_id=f"t-{name}",
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        wanted = {str(e.id) for e in events}
        seen: dict[bytes, list[str]] = {}
        partitions: dict[bytes, set[int]] = {}
        async with asyncio.timeout(60):
            while wanted - {i for ids in seen.values() for i in ids}:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        event = VISIT.parse(r.value)
                        if str(event.id) in wanted:
                            seen.setdefault(r.key, []).append(str(event.id))
                            partitions.setdefault(r.key, set()).add(r.partition)
        for household in households:
            expected = [str(e.id) for e in events if e.subject == str(household)]
            assert seen[str(household).encode()] == expected
            assert len(partitions[str(household).encode()]) == 1
        async with asyncio.timeout(10):
            while await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = $1",
                                      VISIT.name):
                await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await consumer.stop()
        await producer.stop()


async def test_events_serialised_in_bulk_are_the_rows_add_writes_and_wake_the_relay(schema):
    name, pool = schema
    outbox = Outbox(name)
    events = [visit_event(uuid.uuid4()) for _ in range(3)]
    woken: list[str] = []

    def heard(_conn, _pid, channel, _payload) -> None:
        woken.append(channel)

    async with pool.acquire() as listener:
        await listener.add_listener(outbox.channel, heard)
        async with pool.acquire() as conn:
            await conn.execute("TRUNCATE outbox")
            async with conn.transaction():
                await outbox.add(conn, events[:1])
                await outbox.copy_serialized(conn, VisitScheduled, [
                    (e.subject, str(e.id), str(e.correlation_id), e.to_bytes().decode()) for e in events])
            rows = await conn.fetch("SELECT topic, key, value, headers::text AS headers FROM outbox ORDER BY id")
        for _ in range(50):
            if woken:
                break
            await asyncio.sleep(0.1)
        await listener.remove_listener(outbox.channel, heard)
    added, *copied = [(r["topic"], bytes(r["key"]), bytes(r["value"]), json.loads(r["headers"])) for r in rows]
    assert copied[0] == added, "the same event, added or copied, is the same row"
    assert [VisitScheduled.model_validate_json(value) for _, _, value, _ in copied] == events
    assert woken == [outbox.channel], "the relay is woken once the rows commit"
