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

from .metrics import RuntimeMetrics
from .outbox import decode_headers, notify_channel

log = logging.getLogger(__name__)


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
    ) -> None:
        self.database_url, self.schema, self.producer, self.metrics = database_url, schema, producer, metrics
        self.batch_size, self.poll_interval_s = batch_size, poll_interval_s
        self._wake = asyncio.Event()
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
        conn = await asyncpg.connect(self.database_url, server_settings={"search_path": self.schema})
        try:
            lock = zlib.crc32(f"relay:{self.schema}".encode())
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
                await self._report(conn)
                await asyncio.sleep(self.poll_interval_s)
            self.is_leader = True
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
        # Pipelined: queue every send, then wait for all acks; awaiting each ack costs ~15x.
        pending = [
            await self.producer.send(r["topic"], r["value"], key=r["key"], headers=decode_headers(r["headers"]))
            for r in rows
        ]
        await asyncio.gather(*pending)
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.metrics.published.inc(len(rows))
        return len(rows)

    async def _report(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            "SELECT count(*) AS pending, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
            " FROM outbox"
        )
        self.metrics.outbox_pending.set(row["pending"])
        self.metrics.outbox_oldest_age.set(float(row["age"]))
