"""How a service's consumers fetch: no nap after an empty fetch, and gathering only where asked."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream.kafka import KafkaBroker

from ejsika_contracts import AGENCY, VISIT
from ejsika_runtime.service import GATHER_BYTES, PromptBatchSubscriber, Service, prompt
from ejsika_runtime.settings import Settings


class Consumer:
    """An aiokafka consumer's `getmany` answering what it is given, noting how it was asked."""

    def __init__(self, *answers: dict) -> None:
        self.answers, self.asked = list(answers), []

    async def getmany(self, *partitions, timeout_ms: int = 0, max_records: int | None = None) -> dict:
        self.asked.append((timeout_ms, max_records))
        return self.answers.pop(0)


def subscriber(timeout_ms: int = 100, max_records: int = 500):
    return KafkaBroker("localhost:9092").subscriber("t", batch=True, batch_timeout_ms=timeout_ms,
                                                    max_records=max_records)


def record(partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord("t", partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


async def test_an_empty_fetch_is_followed_by_the_next_fetch_without_a_nap(monkeypatch):
    napped: list[float] = []

    async def nap(seconds: float) -> None:
        napped.append(seconds)

    monkeypatch.setattr(anyio, "sleep", nap)
    batch = subscriber(timeout_ms=100, max_records=7)
    prompt(batch)
    assert isinstance(batch, PromptBatchSubscriber)
    consumer = Consumer({}, {TopicPartition("t", 0): [record(0, 1), record(0, 2)], TopicPartition("t", 1): [record(1, 5)]})
    assert await batch.get_msg(consumer) == ()
    got = await batch.get_msg(consumer)
    assert napped == [], "FastStream's own get_msg slept batch_timeout_ms after the empty fetch"
    assert [(r.partition, r.offset) for r in got] == [(0, 1), (0, 2), (1, 5)]
    # the wait for a record is getmany's own (it answers as soon as one is there), bounded as configured
    assert consumer.asked == [(100, 7), (100, 7)]


def test_only_a_batch_subscriber_of_faststream_is_made_prompt():
    other = KafkaBroker("localhost:9092").subscriber("t")  # one message at a time: another class
    with pytest.raises(TypeError):
        prompt(other)


def fetch_options(service: Service, topic: str) -> set[tuple]:
    return {(s._connection_args.get("fetch_max_wait_ms"), s._connection_args.get("fetch_min_bytes"))
            for s in service.broker.subscribers if topic in s.topic_names}


def test_consumers_gather_only_where_asked_and_every_one_is_prompt(tmp_path: Path):
    service = Service("gathering", Settings(consumer_concurrency=2), tmp_path)
    service.consumes(VISIT, lambda uow, events: None, gather_ms=40)
    service.consumes(AGENCY, lambda uow, events: None)

    assert fetch_options(service, VISIT.name) == {(40, GATHER_BYTES)}
    # the broker's defaults: a fetch answered with the first record, an idle one held 500 ms
    assert fetch_options(service, AGENCY.name) == {(500, 1)}
    assert len(service.broker.subscribers) == 4
    assert all(type(s) is PromptBatchSubscriber for s in service.broker.subscribers)
