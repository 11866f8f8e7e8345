"""A consumer that gathers (`Service.consumes(..., gather_ms=...)`) on the real Kafka and PostgreSQL:
visits published one produce request each are applied once, in order per household, in fewer batches
than visits."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from ejsika_contracts import VISIT, VisitScheduled, VisitScheduledData
from ejsika_runtime.kafka import new_producer
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings

pytestmark = pytest.mark.infra

GATHER_MS = 3000  # far above the few milliseconds between the visits' produce requests


def visit(household: uuid.UUID) -> VisitScheduled:
    return VisitScheduled(source="test", subject=str(household), correlation_id=uuid.uuid4(),
                          data=VisitScheduledData(household_id=household, visit_id=uuid.uuid4(),
                                                  kind="first_visit", due_date="2026-12-01"))


async def publish_each(bootstrap: str, events) -> None:
    """Each event in a produce request of its own, each acknowledged before the next."""
    producer = new_producer(bootstrap, "gathering-test")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(VISIT.name, event.to_bytes(), key=event.key())
    finally:
        await producer.stop()


async def test_a_gathering_consumer_applies_each_visit_once_in_order_in_fewer_batches(
        database_url, kafka_bootstrap, tmp_path):
    (tmp_path / "001_applied.sql").write_text(
        "CREATE TABLE applied (seq bigserial, batch int NOT NULL, event_id uuid NOT NULL, household_id uuid NOT NULL)")
    name = f"gather_{uuid.uuid4().hex[:6]}"
    batches = 0

    async def handler(uow, events) -> None:
        nonlocal batches
        batches += 1
        await uow.conn.execute(
            "INSERT INTO applied (batch, event_id, household_id) SELECT $1, * FROM unnest($2::uuid[], $3::uuid[])",
            batches, [e.id for e in events], [e.data.household_id for e in events])

    service = Service(name, Settings(database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                                     consumer_concurrency=1), tmp_path)
    service.consumes(VISIT, handler, gather_ms=GATHER_MS)
    households = [uuid.uuid4() for _ in range(3)]
    first = visit(households[0])
    later = [visit(households[i % 3]) for i in range(9)]
    try:
        async with service.running():
            # the group reads the topic from its start: wait until it is past what other tests left there
            await publish_each(kafka_bootstrap, [first])
            async with asyncio.timeout(120):
                while not await service.pool.fetchval("SELECT count(*) FROM applied WHERE event_id = $1", first.id):
                    await asyncio.sleep(0.2)
            await publish_each(kafka_bootstrap, later)
            await publish_each(kafka_bootstrap, later[:2])  # redelivered, as after a crash before an offset commit
            async with asyncio.timeout(60):
                while await service.pool.fetchval(
                        "SELECT count(*) FROM applied WHERE event_id = ANY($1::uuid[])", [e.id for e in later]) < 9:
                    await asyncio.sleep(0.2)
            await asyncio.sleep(GATHER_MS / 1000 + 1)  # the redelivered ones had time to arrive
            rows = await service.pool.fetch(
                "SELECT batch, event_id, household_id FROM applied WHERE event_id = ANY($1::uuid[]) ORDER BY seq",
                [e.id for e in later])
    finally:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()

    assert sorted(r["event_id"] for r in rows) == sorted(e.id for e in later), "each visit applied once"
    for household in households:
        assert [r["event_id"] for r in rows if r["household_id"] == household] == \
               [e.id for e in later if e.data.household_id == household], "a household's visits in their order"
    assert len({r["batch"] for r in rows}) < len(later), "the broker gathered visits into shared batches"
