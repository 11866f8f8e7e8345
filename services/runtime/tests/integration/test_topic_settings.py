"""The topics as `ejsika topics create` makes them, and the producer's compression, on a real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from ejsika_contracts import HOUSEHOLD
from ejsika_contracts.topics import Topic
from ejsika_runtime import kafka
from ejsika_runtime.kafka import new_producer, producer_options, topic_configs

pytestmark = pytest.mark.infra


async def configs_of(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [(_code, _message, _type, _name, entries)] = response.resources
    return {name: value for name, value, *_ in entries}


async def test_dead_letters_outlive_the_retention_and_the_main_topic_keeps_it(kafka_bootstrap: str,
                                                                              monkeypatch) -> None:
    # A topic of its own, made here by `create_topics`: the catalogue's topics may predate this code
    # on the session's broker (made by an earlier run), and would then show that run's settings.
    topic = Topic(f"ejsika.test-retention.{uuid.uuid4().hex[:8]}", 1, HOUSEHOLD.events, "test")
    monkeypatch.setattr(kafka, "TOPICS", (topic,))
    assert sorted(await kafka.create_topics(kafka_bootstrap)) == [topic.name, topic.dead_letter]
    main, dead = await configs_of(kafka_bootstrap, topic.name), await configs_of(kafka_bootstrap, topic.dead_letter)

    assert dead["retention.ms"] == "-1"
    assert main["retention.ms"] != "-1"
    # a single embedded broker can hold one replica only
    assert main["min.insync.replicas"] == dead["min.insync.replicas"] == "1"


def test_production_topics_need_two_replicas_in_sync() -> None:
    assert topic_configs(3, dead_letter=False) == {"min.insync.replicas": "2"}
    assert topic_configs(3, dead_letter=True) == {"min.insync.replicas": "2", "retention.ms": "-1"}


async def test_zstd_compressed_records_come_back_whole(kafka_bootstrap: str) -> None:
    assert producer_options()["compression_type"] == "zstd"
    key, value = uuid.uuid4().hex.encode(), b'{"type": "household.updated", "data": {}}' * 50
    producer = new_producer(kafka_bootstrap, "test-compression")
    await producer.start()
    try:
        sent = await producer.send_and_wait(HOUSEHOLD.dead_letter, value, key=key)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(sent.topic, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        record = (await consumer.getmany(partition, timeout_ms=10_000))[partition][0]
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (key, value)
