"""Kafka clients with the platform's guarantees: idempotent producers, topics from the catalogue."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from ejsika_contracts import TOPICS

log = logging.getLogger(__name__)


def producer_options() -> dict:
    # acks=all + idempotence: a retried send neither duplicates nor reorders within a partition.
    # A 256 KB batch with a short linger lets pipelined sends (send, then gather) fill batches.
    return {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
    }


def new_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, client_id=client_id, **producer_options())


async def create_topics(bootstrap: str, replication_factor: int = 1) -> list[str]:
    """Create every catalogue topic and its dead-letter topic that does not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ejsika-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = []
        for topic in TOPICS:
            for name in (topic.name, topic.dead_letter):
                if name not in existing:
                    wanted.append(NewTopic(name, topic.partitions, replication_factor))
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another starter
        return [t.name for t in wanted]
    finally:
        await admin.close()
