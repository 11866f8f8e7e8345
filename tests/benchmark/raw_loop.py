"""The raw limit: aiokafka → one asyncpg transaction per batch (inbox, effect, outbox) → aiokafka.

The same work a service does for each event, without the platform: what the services are
measured against.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ENVELOPE_BYTES = 60  # what `{"id": "<uuid>", "data": ""}` adds around the payload


async def run(bootstrap: str, database_url: str, count: int, event_bytes: int = 630) -> float:
    """Events/s of the loop for `count` events of about `event_bytes` each."""
    payload = "x" * max(event_bytes - ENVELOPE_BYTES, 0)
    suffix = uuid.uuid4().hex[:6]
    source, sink = f"bench.raw.in.{suffix}", f"bench.raw.out.{suffix}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(source, 6, 1), NewTopic(sink, 6, 1)])
    await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    keys = [str(uuid.uuid4()).encode() for _ in range(1000)]
    pending = [await producer.send(source, json.dumps({"id": str(uuid.uuid4()), "data": payload}).encode(),
                                   key=keys[i % 1000]) for i in range(count)]
    await asyncio.gather(*pending)

    conn = await asyncpg.connect(database_url)
    schema = f"bench_raw_{suffix}"
    await conn.execute(f"CREATE SCHEMA {schema}; SET search_path = {schema};"
                       "CREATE TABLE inbox (event_id uuid PRIMARY KEY);"
                       "CREATE TABLE effect (id uuid PRIMARY KEY, body jsonb);"
                       "CREATE TABLE outbox (id bigserial PRIMARY KEY, key bytea, value bytea)")
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=f"raw-{suffix}",
                                auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=500)
    await consumer.start()
    done, started = 0, None
    while done < count:
        batches = await consumer.getmany(timeout_ms=1000, max_records=500)
        records = [r for rs in batches.values() for r in rs]
        if not records:
            continue
        started = started or time.perf_counter()
        ids = [uuid.UUID(json.loads(r.value)["id"]) for r in records]
        async with conn.transaction():
            fresh = {r["event_id"] for r in await conn.fetch(
                "INSERT INTO inbox SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id", ids)}
            await conn.execute("INSERT INTO effect SELECT * FROM unnest($1::uuid[], $2::jsonb[])",
                               [i for i in ids if i in fresh], [r.value.decode() for r, i in zip(records, ids) if i in fresh])
            await conn.execute("INSERT INTO outbox (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[])",
                               [r.key for r in records], [r.value for r in records])
        await asyncio.gather(*[await producer.send(sink, r.value, key=r.key) for r in records])
        await consumer.commit()
        done += len(records)
    elapsed = time.perf_counter() - started
    await consumer.stop()
    await producer.stop()
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()
    return count / elapsed


if __name__ == "__main__":
    rate = asyncio.run(run(os.environ["EJSIKA_KAFKA_BOOTSTRAP"], os.environ["EJSIKA_DATABASE_URL"], 100_000))
    print(f"raw loop: {rate:,.0f} events/s")
