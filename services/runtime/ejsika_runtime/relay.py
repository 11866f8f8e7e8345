"""The outbox relay: publishes committed outbox rows to Kafka in id order, then deletes them.

Only one relay per schema publishes at a time: it holds a Postgres advisory lock for as long as
its connection lives, and replicas wait to take over. One publisher keeps the per-household order
of the outbox all the way into Kafka, which several publishers racing on `SKIP LOCKED` would not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from .db import DEFAULT_POLICY, ConnectionPolicy, connect
from .metrics import RuntimeMetrics
from .outbox import decode_headers, notify_channel

log = logging.getLogger(__name__)

# The producer's own default (Kafka's murmur2 of the key): a household's events land on the
# partition any Kafka client would choose for its id.
PARTITIONER = DefaultPartitioner()


class OutboxRelay:
    def __init__(
        self,
        *,
        database_url: str,
        schema: str,
        producer: AIOKafkaProducer,
        metrics: RuntimeMetrics,
        batch_size: int = 2000,
        poll_interval_s: float = 1.0,
        connection_policy: ConnectionPolicy = DEFAULT_POLICY,
    ) -> None:
        self.database_url, self.schema, self.producer, self.metrics = database_url, schema, producer, metrics
        # A command timeout and keepalives: a half-open leader connection fails a statement (and
        # the relay leads again) instead of hanging while the server keeps its lock for it.
        self.connection_policy = connection_policy
        self.batch_size, self.poll_interval_s = batch_size, poll_interval_s
        self._wake = asyncio.Event()
        self._partitions: dict[str, list[int]] = {}
        self.is_leader = False

    async def run(self) -> None:
        """Forever: become the leader, publish until the connection breaks, then start again."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # database or broker away: wait, then try to lead again
                self.is_leader = False
                log.warning("outbox relay interrupted (%s); retrying", type(error).__name__)
                await asyncio.sleep(self.poll_interval_s)

    async def _lead(self) -> None:
        conn = await connect(self.database_url, policy=self.connection_policy,
                             server_settings={"search_path": self.schema})
        try:
            lock = zlib.crc32(f"relay:{self.schema}".encode())
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
                await self._report(conn)
                await asyncio.sleep(self.poll_interval_s)
            self.is_leader = True
            self._partitions.clear()  # a topic may have grown while another replica led
            await conn.add_listener(notify_channel(self.schema), lambda *_: self._wake.set())
            while True:
                self._wake.clear()
                sent = await self.publish_batch(conn)
                if sent < self.batch_size:
                    await self._report(conn)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await conn.close()

    async def publish_batch(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1",
            self.batch_size,
        )
        if not rows:
            return 0
        by_partition: dict[tuple[str, int], list[asyncpg.Record]] = {}
        for row in rows:
            partitions = self._partitions.get(row["topic"]) or await self._load_partitions(row["topic"])
            partition = PARTITIONER(row["key"], partitions, partitions)
            by_partition.setdefault((row["topic"], partition), []).append(row)
        # All partitions at once, and acks awaited together: awaiting each costs ~15x.
        await asyncio.gather(*(self._send(topic, partition, records)
                               for (topic, partition), records in by_partition.items()))
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.metrics.published.inc(len(rows))
        return len(rows)

    async def _send(self, topic: str, partition: int, rows: list[asyncpg.Record]) -> None:
        """Hand one partition's rows to Kafka as whole batches, in outbox order.

        Why not `producer.send` per record: its future and accumulator pass per record were most
        of the relay's CPU, in a process that also runs the service.
        """
        acks = []
        batch = self.producer.create_batch()
        for row in rows:
            record = {"key": row["key"], "value": row["value"], "timestamp": None,
                      "headers": decode_headers(row["headers"])}
            if batch.append(**record) is None:  # full: submit it, start the next one
                acks.append(await self.producer.send_batch(batch, topic, partition=partition))
                batch = self.producer.create_batch()
                if batch.append(**record) is None:  # aiokafka always takes a batch's first record
                    raise RuntimeError(f"outbox row {row['id']} did not fit in an empty batch")
        acks.append(await self.producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)

    async def _load_partitions(self, topic: str) -> list[int]:
        self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
        return self._partitions[topic]

    async def _report(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            "SELECT count(*) AS pending, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
            " FROM outbox"
        )
        self.metrics.outbox_pending.set(row["pending"])
        self.metrics.outbox_oldest_age.set(float(row["age"]))
