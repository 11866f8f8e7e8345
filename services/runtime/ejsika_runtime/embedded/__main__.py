"""Smoke check: `python -m ejsika_runtime.embedded [STATE_DIR]` (default STATE_DIR: ./.ejsika)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

from ._util import EmbeddedError
from .stack import EmbeddedStack

TOPIC = "ejsika.embedded-check"


async def _check_kafka(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()

    payload = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, payload)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id=f"embedded-check-{payload.decode()}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            async for message in consumer:
                if message.value == payload:
                    break
    finally:
        await consumer.stop()
    print(f"kafka: topic {TOPIC}: produced and consumed {payload.decode()}")


async def _check_postgres(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        print(f"postgres: select 1 -> {await conn.fetchval('select 1')}")
    finally:
        await conn.close()


async def _checks(dsn: str | None, bootstrap: str | None) -> None:
    assert dsn and bootstrap
    await asyncio.gather(_check_postgres(dsn), _check_kafka(bootstrap))


def main(argv: list[str]) -> None:
    state_dir = Path(argv[1] if len(argv) > 1 else ".ejsika").resolve()
    started = time.monotonic()
    with EmbeddedStack(state_dir) as stack:
        print(f"stack ready in {time.monotonic() - started:.1f}s")
        print(f"database_url:    {stack.database_url}")
        print(f"kafka_bootstrap: {stack.kafka_bootstrap}")
        asyncio.run(_checks(stack.database_url, stack.kafka_bootstrap))
        stopping = time.monotonic()
    print(f"stopped in {time.monotonic() - stopping:.1f}s; total {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except EmbeddedError as error:
        sys.exit(f"error: {error}")
