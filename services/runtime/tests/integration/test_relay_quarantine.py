"""The relay against what Kafka refuses, on the real PostgreSQL and (but for the last test) the real broker.

A row the broker will never take (larger than the topic's max.message.bytes, for a topic that does
not exist, unreadable headers) is quarantined with its reason; every other row is published exactly
once, in order per key, the rows behind the bad one included; a partition Kafka does not acknowledge
waits while the others are published, and the gauges and the log say so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.kafka import new_producer
from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.relay import PARTITIONER, OutboxRelay, release

pytestmark = pytest.mark.infra

NO_MIGRATIONS = Path(__file__).parent / "no-migrations"
PARTITIONS = [0, 1, 2]


@pytest.fixture
async def schema(database_url):
    name = f"relayq_{uuid.uuid4().hex[:6]}"
    pool = await create_pool(database_url, name, size=2)
    await migrate(pool, name, NO_MIGRATIONS)
    yield name, pool
    await pool.execute(f'DROP SCHEMA "{name}" CASCADE')
    await pool.close()


async def new_topic(bootstrap: str, **configs: str) -> str:
    name = f"r1test.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, len(PARTITIONS), 1, topic_configs=configs)])
    finally:
        await admin.close()
    return name


def key_on(partition: int, avoid: set[bytes] = frozenset()) -> bytes:
    """A household id whose records Kafka's default partitioner puts on `partition`."""
    while True:
        key = str(uuid.uuid4()).encode()
        if key not in avoid and PARTITIONER(key, PARTITIONS, PARTITIONS) == partition:
            return key


async def add(pool, name: str, records: list[tuple[str, bytes, bytes]]) -> list[int]:
    """Write outbox rows (topic, key, value) as a service would; answer their ids in order."""
    async with pool.acquire() as conn, conn.transaction():
        await Outbox(name).add_records(conn, [(topic, key, value, [("ce_id", value[:36])]) for topic, key, value in records])
        return [r["id"] for r in await conn.fetch("SELECT id FROM outbox ORDER BY id")][-len(records):]


async def run_until_drained(relay: OutboxRelay, pool, timeout_s: float = 60) -> None:
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(timeout_s):
            while await pool.fetchval("SELECT count(*) FROM outbox"):
                await asyncio.sleep(0.1)
            # The gauges follow once the outbox is quiet (they are not reported every round).
            while relay.metrics.outbox_quarantine_rows._value.get() != await pool.fetchval(
                    "SELECT count(*) FROM outbox_quarantine") or relay.metrics.outbox_pending._value.get():
                await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.producer.stop()


async def everything_in(bootstrap: str, topic: str) -> dict[int, list[tuple[bytes, bytes]]]:
    """Every record of `topic`, per partition, in log order: (key, value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in PARTITIONS]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        seen: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in PARTITIONS}
        async with asyncio.timeout(30):
            while any([await consumer.position(tp) < ends[tp] for tp in parts]):
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    seen[tp.partition] += [(r.key, r.value) for r in records]
        return seen
    finally:
        await consumer.stop()


def value(tag: str, size: int = 200) -> bytes:
    text = f"{uuid.uuid4()}:{tag}:".encode()
    return text + b"." * (size - len(text))


async def test_a_row_too_large_for_its_topic_is_quarantined_and_every_other_row_published_once(
        schema, database_url, kafka_bootstrap):
    name, pool = schema
    topic = await new_topic(kafka_bootstrap, **{"max.message.bytes": "4096"})
    a, b = key_on(0), key_on(1)
    c = key_on(2)
    too_large = os.urandom(12_000)  # random: no compression brings it under the topic's 4 KB
    records = []
    for n in range(6):
        records += [(topic, a, value(f"a{n}")), (topic, b, value(f"b{n}"))]
    records += [(topic, c, value("c-before-1")), (topic, c, value("c-before-2")), (topic, c, too_large)]
    records += [(topic, c, value(f"c-behind-{n}")) for n in range(3)]
    records += [(topic, a, value("a-last"))]
    ids = await add(pool, name, records)
    bad_id = ids[records.index((topic, c, too_large))]

    metrics = RuntimeMetrics(registry := CollectorRegistry(), "test")
    relay = OutboxRelay(database_url=database_url, schema=name, producer=await started(kafka_bootstrap),
                        producer_factory=lambda: new_producer(kafka_bootstrap, "r1-test-relay"),
                        metrics=metrics, batch_size=500, poll_interval_s=0.2)
    await run_until_drained(relay, pool)

    published = await everything_in(kafka_bootstrap, topic)
    for key, partition in ((a, 0), (b, 1), (c, 2)):
        expected = [v for t, k, v in records if k == key and v is not too_large]
        assert [v for k, v in published[partition] if k == key] == expected, \
            "each row once, in outbox order, the ones behind the refused row included"
    quarantined = await pool.fetch("SELECT id, topic, partition, reason, value FROM outbox_quarantine")
    assert [(r["id"], r["topic"], r["partition"], r["reason"]) for r in quarantined] == \
        [(bad_id, topic, 2, "too_large")]
    assert quarantined[0]["value"] == too_large, "kept whole, to be released once the topic takes it"
    assert registry.get_sample_value("ejsika_outbox_quarantined_total",
                                     {"service": "test", "topic": topic, "reason": "too_large"}) == 1
    assert registry.get_sample_value("ejsika_outbox_quarantine_rows", {"service": "test"}) == 1
    assert registry.get_sample_value("ejsika_outbox_pending", {"service": "test"}) == 0
    assert registry.get_sample_value("ejsika_outbox_published_total", {"service": "test"}) == len(records) - 1


async def test_rows_for_a_missing_topic_or_with_unreadable_headers_are_quarantined_and_can_be_released(
        schema, database_url, kafka_bootstrap):
    name, pool = schema
    topic = await new_topic(kafka_bootstrap)
    missing = f"r1test.missing.{uuid.uuid4().hex[:8]}"
    key = key_on(0)
    good = [value(f"g{n}") for n in range(4)]
    ids = await add(pool, name, [(topic, key, good[0]), (missing, key, value("lost")), (topic, key, good[1])])
    unreadable = await pool.fetchval(
        "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4) RETURNING id",
        topic, key, value("unreadable"), '[["ce_id", "\u2019"]]')  # not latin-1: no Kafka header bytes
    await add(pool, name, [(topic, key, good[2]), (topic, key, good[3])])

    relay = OutboxRelay(database_url=database_url, schema=name, producer=await started(kafka_bootstrap),
                        producer_factory=lambda: new_producer(kafka_bootstrap, "r1-test-relay"),
                        metrics=RuntimeMetrics(CollectorRegistry(), "test"), poll_interval_s=0.2,
                        unknown_topic_grace_s=1.0)
    await run_until_drained(relay, pool, timeout_s=30)  # well inside the producer's 40 s metadata wait

    assert [v for _, v in (await everything_in(kafka_bootstrap, topic))[0]] == good
    reasons = {r["id"]: r["reason"] for r in await pool.fetch("SELECT id, reason FROM outbox_quarantine")}
    assert reasons == {ids[1]: "unknown_topic", unreadable: "serialisation"}

    await new_topic_named(kafka_bootstrap, missing)
    async with pool.acquire() as conn:
        assert await release(conn, [ids[1]]) == 1
    relay = OutboxRelay(database_url=database_url, schema=name, producer=await started(kafka_bootstrap),
                        metrics=RuntimeMetrics(CollectorRegistry(), "test"), poll_interval_s=0.2)
    await run_until_drained(relay, pool, timeout_s=30)
    assert [v for part in (await everything_in(kafka_bootstrap, missing)).values() for _, v in part][0] \
        .split(b":")[1] == b"lost"
    assert await pool.fetchval("SELECT array_agg(id) FROM outbox_quarantine") == [unreadable]


class RefusingKafka:
    """A producer whose partition 0 is never acknowledged (a broker away for it); the others are."""

    def __init__(self) -> None:
        self.sent: dict[int, int] = {}

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(256 * 1024, 0)

    async def send_batch(self, batch, topic, *, partition):
        self.sent[partition] = self.sent.get(partition, 0) + 1
        future = asyncio.get_running_loop().create_future()
        future.set_exception(KafkaConnectionError("no route to the partition's leader")) if partition == 0 \
            else future.set_result(None)
        return future


async def test_a_partition_kafka_does_not_acknowledge_waits_while_the_others_are_published_once(
        schema, database_url, caplog):
    name, pool = schema
    topic = "r1test.refusing"
    stuck, moving = key_on(0), key_on(1)
    ids = await add(pool, name, [(topic, stuck, value("s1")), (topic, moving, value("m1")),
                                 (topic, stuck, value("s2")), (topic, moving, value("m2"))])
    kafka = RefusingKafka()
    registry = CollectorRegistry()
    relay = OutboxRelay(database_url=database_url, schema=name, producer=kafka, producer_factory=lambda: kafka,
                        metrics=RuntimeMetrics(registry, "test"), poll_interval_s=0.1)
    relay._partitions[topic] = PARTITIONS
    relay._load_partitions = _known(PARTITIONS)

    task = asyncio.create_task(relay.run())
    try:
        with caplog.at_level(logging.INFO, logger="ejsika_runtime.relay"):
            async with asyncio.timeout(20):
                while kafka.sent.get(0, 0) < 4:  # several rounds
                    await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert [r["id"] for r in await pool.fetch("SELECT id FROM outbox ORDER BY id")] == [ids[0], ids[2]], \
        "what Kafka acknowledged is deleted; the refused partition keeps its rows"
    assert kafka.sent[1] == 1, "the acknowledged partition is not sent again"
    assert registry.get_sample_value("ejsika_outbox_pending", {"service": "test"}) == 2, "reported on this path too"
    assert registry.get_sample_value("ejsika_outbox_oldest_age_seconds", {"service": "test"}) > 0
    assert registry.get_sample_value("ejsika_outbox_publish_failures_total",
                                     {"service": "test", "error": "KafkaConnectionError"}) >= 4
    assert not relay.healthy()
    waits = [r.getMessage() for r in caplog.records if "not published" in r.getMessage()]
    assert len(waits) == 1, "logged once while it lasts, not every round"
    assert f"outbox row {ids[0]} to {topic}[0]" in waits[0] and "KafkaConnectionError" in waits[0]
    assert "s1" not in caplog.text, "never the payload"


def _known(partitions):
    async def load(topic: str) -> list[int]:
        return partitions
    return load


async def started(bootstrap: str):
    producer = new_producer(bootstrap, "r1-test-relay")
    await producer.start()
    return producer


async def new_topic_named(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, len(PARTITIONS), 1)])
    finally:
        await admin.close()
