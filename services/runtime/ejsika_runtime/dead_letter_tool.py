"""Reading and replaying a dead-letter topic (the `ejsika dead-letters` commands)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError, for_code

from ejsika_contracts import topic_named

from .dead_letters import PREFIX, header_map
from .holds import REPLAYED_FOR, REPLAYED_FROM
from .kafka import new_producer, security_options

if TYPE_CHECKING:
    from .settings import Settings


@dataclass(frozen=True)
class Letter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def facts(self) -> dict[str, str]:
        return header_map(self.headers)

    @property
    def replayed_from(self) -> str | None:
        """PARTITION:OFFSET of the dead letter this record was replayed from, if it was."""
        return next((v.decode() for n, v in self.headers if n == REPLAYED_FROM), None)


async def read(bootstrap: str, source_topic: str, settings: Settings | None = None) -> AsyncIterator[Letter]:
    """Every record of the dead-letter topic of `source_topic`, oldest first, without a consumer group."""
    name = topic_named(source_topic).dead_letter
    # A group id although nothing is committed: aiokafka 0.14's group-less consumer fails on stop().
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="ejsika-dead-letter-tool",
                                enable_auto_commit=False, **security_options(settings))
    await consumer.start()
    try:
        partitions = [TopicPartition(name, p) for p in await partitions_of(bootstrap, name, settings)]
        if not partitions:
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    yield Letter(r.partition, r.offset, r.key, r.value, list(r.headers or ()))
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def partitions_of(bootstrap: str, topic: str, settings: Settings | None = None) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ejsika-dead-letter-tool",
                                **security_options(settings))
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
        # No such topic: nothing to read. Any other error (not authorized) must not read as "none".
        if description["error_code"] not in (0, UnknownTopicOrPartitionError.errno):
            raise for_code(description["error_code"])(topic)
        return sorted(p["partition"] for p in description["partitions"])
    finally:
        await admin.close()


async def replay(bootstrap: str, source_topic: str, only: set[tuple[int, int]] | None = None,
                 settings: Settings | None = None) -> int:
    """Publish dead letters back to their source topic, oldest first, each for the group that wrote it
    (the topic's other groups pass it over: their inbox may have forgotten that they applied it).
    Holds apply a household's replayed events in their first order (`holds`)."""
    producer = new_producer(bootstrap, "ejsika-dead-letter-replay", settings)
    await producer.start()
    count = 0
    try:
        async for letter in read(bootstrap, source_topic, settings):
            if only is not None and (letter.partition, letter.offset) not in only:
                continue
            headers = [(n, v) for n, v in letter.headers
                       if not n.startswith(PREFIX) and n not in (REPLAYED_FROM, REPLAYED_FOR)]
            headers.append((REPLAYED_FROM, f"{letter.partition}:{letter.offset}".encode()))
            if group := letter.facts.get("group"):  # only the group that dead-lettered it applies it
                headers.append((REPLAYED_FOR, group.encode()))
            await producer.send(letter.facts.get("topic", source_topic), letter.value, key=letter.key, headers=headers)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def forget(bootstrap: str, source_topic: str, service: str, letters: set[tuple[int, int]],
                 settings: Settings) -> int:
    """Give up on dead letters for good (never to be replayed) in one service's consumer: the events
    of their households parked behind them are then applied when replayed (`holds`). Answers how
    many held letters were let go."""
    import asyncpg

    from . import holds

    chosen = [holds.letter_of(letter.key, letter.value) async for letter in read(bootstrap, source_topic, settings)
              if (letter.partition, letter.offset) in letters]
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": service})
    try:
        return await holds.forget(conn, source_topic, chosen)
    finally:
        await conn.close()
