"""How the relay settles one partition's rows against what Kafka answers, batch by batch.

Kafka is a stand-in here (the broker's answers are scripted); tests/integration/test_relay_quarantine.py
shows the same against the real broker.
"""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.producer.message_accumulator import BatchBuilder
from prometheus_client import CollectorRegistry

from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.relay import OutboxRelay, kafka_record


class Batch(BatchBuilder):
    """aiokafka's batch builder (so "full" is aiokafka's), remembering the rows it holds."""

    def __init__(self) -> None:
        super().__init__(1024, 0)
        self.ids: list[int] = []

    def append(self, *, key, **record):
        metadata = super().append(key=key, **record)
        if metadata is not None:
            self.ids.append(int(key))
        return metadata


class ScriptedKafka:
    """Answers each `send_batch` with `answer(ids)`: an error, or None for acknowledged."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.sent: list[list[int]] = []

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Batch, topic, *, partition):
        self.sent.append(batch.ids)
        future = asyncio.get_running_loop().create_future()
        error = self.answer(batch.ids)
        future.set_exception(error) if error else future.set_result(None)
        return future


def rows(*sizes: int) -> list[tuple[dict, dict]]:
    made = []
    for index, size in enumerate(sizes, start=1):
        row = {"id": index, "topic": "t", "key": str(index).encode(), "value": b"v" * size, "headers": "[]"}
        made.append((row, kafka_record(row)))
    return made


def relay_with(kafka: ScriptedKafka) -> OutboxRelay:
    return OutboxRelay(database_url="", schema="s", producer=kafka, metrics=RuntimeMetrics(CollectorRegistry(), "t"))


async def test_a_partition_stops_at_its_first_failed_batch_and_sends_nothing_behind_it():
    kafka = ScriptedKafka(lambda ids: KafkaTimeoutError() if 1 in ids else None)
    relay = relay_with(kafka)

    outcome = await relay._send("t", 0, rows(400, 400, 400, 400))  # two batches of 1 KB

    assert kafka.sent == [[1, 2]], "the second batch waits for the first: it would overtake it"
    assert outcome.published == [] and outcome.failed_row == 1
    assert isinstance(outcome.error, KafkaTimeoutError) and outcome.renew


async def test_what_was_acknowledged_before_a_failure_is_published():
    kafka = ScriptedKafka(lambda ids: KafkaTimeoutError() if 3 in ids else None)
    outcome = await relay_with(kafka)._send("t", 0, rows(400, 400, 400, 400))
    assert outcome.published == [1, 2] and outcome.failed_row == 3


async def test_a_refused_batch_is_tried_one_row_at_a_time_and_only_the_culprit_is_quarantined():
    kafka = ScriptedKafka(lambda ids: MessageSizeTooLargeError() if 2 in ids else None)
    relay = relay_with(kafka)

    first = await relay._send("t", 0, rows(100, 600, 100))
    assert first.published == [] and first.rejected == [] and first.error is None and first.renew
    assert relay._alone == {1, 2, 3}

    second = await relay._send("t", 0, rows(100, 600, 100))  # the next round, with a new producer
    assert second.published == [1] and [(r.id, r.reason) for r in second.rejected] == [(2, "too_large")]
    assert second.error is None and second.renew, "the spent sequence needs a new producer"

    third = await relay._send("t", 0, rows(100, 600, 100)[2:])  # what is left behind the quarantined row
    assert third.published == [3] and relay._alone == set()
    assert kafka.sent == [[1, 2, 3], [1], [2], [3]]


def test_rows_that_cannot_be_records_are_refused_before_sending():
    for headers in ('[["ce_id", "\u2019"]]', "not json", '[[1, "x"]]'):
        row = {"id": 1, "topic": "t", "key": b"k", "value": b"v", "headers": headers}
        try:
            kafka_record(row)
        except (ValueError, TypeError):
            continue
        raise AssertionError(f"{headers!r} became a record")
