"""A consumer under failures, on the real PostgreSQL (and Kafka where offsets and letters matter).

- The database away in the middle of a batch (its session ended, a lock not granted, a statement
  cancelled) is not the events' fault: the batch is rewound, nothing is dead-lettered, and once the
  database serves again each event is applied once.
- A handler failing for every event (a deploy bug) dead-letters nothing and commits no offset; the
  consumer pauses, and applies every event exactly once when the handler is fixed.
- A poison event becomes a dead letter with its headers, read back from Kafka; the partition moves
  on (the next record of that partition is applied and committed); the household's later event waits
  behind it, and a replay out of order still applies the household's events in their order.
- A batch's offsets reach Kafka only after its transaction commits: while it is held open, the
  group's committed offsets have not moved past it.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry

from ejsika_contracts import VISIT, VisitScheduled, VisitScheduledData
from ejsika_runtime.consumer import BatchConsumer, PassCutShort
from ejsika_runtime.dead_letter_tool import forget, read, replay
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.holds import REPLAYED_FOR
from ejsika_runtime.kafka import new_producer
from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings

pytestmark = pytest.mark.infra

APPLIED = ("CREATE TABLE applied (seq bigserial, event_id uuid NOT NULL, household_id uuid NOT NULL);"
           # a household's state, last wins (as registry's record of assessments): order is what guards it
           " CREATE TABLE latest (household_id uuid PRIMARY KEY, event_id uuid NOT NULL)")


def visit(household: uuid.UUID | None = None) -> VisitScheduled:
    household = household or uuid.uuid4()
    return VisitScheduled(source="test", subject=str(household), correlation_id=uuid.uuid4(),
                          data=VisitScheduledData(household_id=household, visit_id=uuid.uuid4(),
                                                  kind="first_visit", due_date="2026-12-01"))


async def record_all(conn: asyncpg.Connection, events) -> None:
    await conn.execute("INSERT INTO applied (event_id, household_id) SELECT * FROM unnest($1::uuid[], $2::uuid[])",
                       [e.id for e in events], [e.data.household_id for e in events])


async def eventually(check, timeout_s: float = 60):
    async with asyncio.timeout(timeout_s):
        while not (result := await check()):
            await asyncio.sleep(0.3)
    return result


# ---- the database away during a batch -----------------------------------------------------------

@pytest.fixture
async def schema(database_url, tmp_path):
    (tmp_path / "001_applied.sql").write_text(APPLIED + ";")
    name = f"dbaway_{uuid.uuid4().hex[:6]}"
    pool = await create_pool(database_url, name, size=3)
    await migrate(pool, name, tmp_path)
    admin = await asyncpg.connect(database_url, server_settings={"search_path": name})
    yield name, pool, admin
    await admin.execute(f'DROP SCHEMA "{name}" CASCADE')
    await admin.close()
    await pool.close()


class DatabaseAway:
    """Takes the database away from the handler's first call, in one of the ways it goes."""

    def __init__(self, how: str, admin: asyncpg.Connection) -> None:
        self.how, self.admin, self.away, self.calls = how, admin, True, 0
        self.blocker: asyncpg.transaction.Transaction | None = None

    async def handler(self, uow, events) -> None:
        self.calls += 1
        if self.away and self.how == "session ended":
            pid = await uow.conn.fetchval("SELECT pg_backend_pid()")
            await self.admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        elif self.away and self.how == "lock not granted":
            await uow.conn.execute("SET LOCAL lock_timeout = '200ms'")
        elif self.away and self.how == "statement cancelled":
            await uow.conn.execute("SET LOCAL statement_timeout = '200ms'")
            await uow.conn.execute("SELECT pg_sleep(2)")
        await record_all(uow.conn, events)

    async def __aenter__(self):
        if self.how == "lock not granted":  # another session holds the table
            self.blocker = self.admin.transaction()
            await self.blocker.start()
            await self.admin.execute("LOCK TABLE applied IN ACCESS EXCLUSIVE MODE")
        return self

    async def __aexit__(self, *_) -> None:
        await self.back()

    async def back(self) -> None:
        self.away = False
        if self.blocker is not None:
            await self.blocker.rollback()
            self.blocker = None


@pytest.mark.parametrize("how", ["session ended", "lock not granted", "statement cancelled"])
async def test_the_database_going_away_during_a_batch_rewinds_it_and_dead_letters_nothing(schema, how):
    name, pool, admin = schema
    events = [visit() for _ in range(4)]
    batch = [ConsumerRecord(VISIT.name, 0, offset, 0, 0, e.key(), e.to_bytes(), None, 0, 0, [])
             for offset, e in enumerate(events)]
    consumer = BatchConsumer(topic=VISIT, group=name, handler=None, pool_of=lambda: pool, outbox=Outbox(name),
                             metrics=RuntimeMetrics(CollectorRegistry(), "test"), max_attempts=2,
                             retry_backoff_s=0)
    async with DatabaseAway(how, admin) as database:
        consumer.handler = database.handler
        with pytest.raises(Exception):
            await consumer.process(batch)
        assert database.calls == 1, "not tried one by one: the events are not at fault"
        await database.back()
    assert await admin.fetchval("SELECT count(*) FROM outbox") == 0, "nothing dead-lettered"
    assert await admin.fetchval("SELECT count(*) FROM dead_letter_holds") == 0

    await consumer.process(batch)  # read again once the database serves
    await consumer.process(batch)  # and once more, as after a crash before the offset commit
    rows = await admin.fetch("SELECT event_id, count(*) AS times FROM applied GROUP BY event_id")
    assert {r["event_id"]: r["times"] for r in rows} == {e.id: 1 for e in events}
    assert await admin.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_long_one_by_one_pass_stops_at_its_budget_keeps_what_it_did_and_letters_nothing_twice(schema):
    """A pass that outlived max.poll.interval.ms would be redone by a sibling, dead-lettering again."""
    name, pool, admin = schema
    poison, *good = [visit() for _ in range(12)]

    async def handler(uow, events):
        if any(e.id == poison.id for e in events):
            raise ValueError("visit kind not in the schedule")
        await asyncio.sleep(0.05)  # a slow handler: the whole pass would take twice its budget
        await record_all(uow.conn, events)

    consumer = BatchConsumer(topic=VISIT, group=name, handler=handler, pool_of=lambda: pool, outbox=Outbox(name),
                             metrics=RuntimeMetrics(CollectorRegistry(), "test"), max_attempts=2,
                             retry_backoff_s=0, isolation_budget_s=0.3)
    batch = [ConsumerRecord(VISIT.name, 0, offset, 0, 0, e.key(), e.to_bytes(), None, 0, 0, [])
             for offset, e in enumerate([poison, *good])]
    passes = 0
    while True:  # as Kafka redelivers a rewound batch
        try:
            await consumer.process(batch)
            break
        except PassCutShort:
            passes += 1
            assert await admin.fetchval("SELECT count(*) FROM applied") > 0, "what the pass did is kept"
            assert passes < len(batch), "each pass gets further"
    assert passes >= 1
    rows = await admin.fetch("SELECT event_id, count(*) AS times FROM applied GROUP BY event_id")
    assert {r["event_id"]: r["times"] for r in rows} == {e.id: 1 for e in good}
    letters = await admin.fetch("SELECT value FROM outbox WHERE topic = $1", VISIT.dead_letter)
    assert [r["value"] for r in letters] == [poison.to_bytes()], "one letter, however many passes"


async def test_a_letter_given_up_for_good_lets_its_household_s_later_events_through(
        schema, database_url, kafka_bootstrap):
    name, pool, admin = schema
    household = uuid.uuid4()
    e1, e2 = visit(household), visit(household)

    async def handler(uow, events):
        if any(e.id == e1.id for e in events):
            raise ValueError("visit kind not in the schedule")
        await record_all(uow.conn, events)

    consumer = BatchConsumer(topic=VISIT, group=name, handler=handler, pool_of=lambda: pool, outbox=Outbox(name),
                             metrics=RuntimeMetrics(CollectorRegistry(), "test"), max_attempts=1, retry_backoff_s=0)
    await consumer.process([ConsumerRecord(VISIT.name, 0, 1, 0, 0, e1.key(), e1.to_bytes(), None, 0, 0, [])])
    letter = await admin.fetchrow("SELECT key, value FROM outbox WHERE topic = $1", VISIT.dead_letter)
    producer = new_producer(kafka_bootstrap, "consumer-failures-test")  # what the relay does with the row
    await producer.start()
    try:
        sent = await producer.send_and_wait(VISIT.dead_letter, letter["value"], key=letter["key"])
    finally:
        await producer.stop()

    settings = Settings(database_url=database_url, kafka_bootstrap=kafka_bootstrap)
    assert await forget(kafka_bootstrap, VISIT.name, name, {(sent.partition, sent.offset)}, settings) == 1
    await consumer.process([ConsumerRecord(VISIT.name, 0, 2, 0, 0, e2.key(), e2.to_bytes(), None, 0, 0, [])])
    assert await admin.fetchval("SELECT array_agg(event_id) FROM applied") == [e2.id], "e2 no longer waits"
    assert await admin.fetchval("SELECT count(*) FROM dead_letter_holds") == 0


# ---- a running service on Kafka -----------------------------------------------------------------

@pytest.fixture
async def running(database_url, kafka_bootstrap, tmp_path):
    """`async with running(handler) as service`: a service consuming VISIT in a group of its own."""
    (tmp_path / "001_applied.sql").write_text(APPLIED + ";")
    made: list[str] = []

    def start(handler):
        name = f"flow_{uuid.uuid4().hex[:6]}"
        made.append(name)
        service = Service(name, Settings(database_url=database_url, kafka_bootstrap=kafka_bootstrap,
                                         consumer_concurrency=1, consumer_max_attempts=2,
                                         consumer_retry_backoff_s=0.2, consumer_pause_max_s=1,
                                         relay_poll_interval_s=0.2), tmp_path)
        service.consumes(VISIT, handler)
        return service.running()

    yield start
    conn = await asyncpg.connect(database_url)
    try:
        for name in made:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def publish(bootstrap: str, events, headers=()) -> list[tuple[int, int]]:
    """Publish keyed by household, as the relay does; answer each record's (partition, offset)."""
    producer = new_producer(bootstrap, "consumer-failures-test")
    await producer.start()
    try:
        sent = [await producer.send_and_wait(VISIT.name, e.to_bytes(), key=e.key(), headers=list(headers))
                for e in events]
    finally:
        await producer.stop()
    return [(m.partition, m.offset) for m in sent]


async def committed(bootstrap: str, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == VISIT.name and meta.offset >= 0}


async def letters_of(bootstrap: str, group: str) -> list:
    return [letter async for letter in read(bootstrap, VISIT.name) if letter.facts.get("group") == group]


async def test_a_handler_failing_for_every_event_leaves_them_in_the_topic_and_applies_them_once_fixed(
        running, kafka_bootstrap):
    mine = [visit() for _ in range(12)]
    where = await publish(kafka_bootstrap, mine)
    broken = True

    async def handler(uow, events):
        if broken:
            raise KeyError("assessed_on")  # e.g. a field the replica's code reads that the events lack
        await record_all(uow.conn, events)

    async with running(handler) as service:
        name, metrics = service.name, service.registry

        def sample(metric: str, **labels) -> float:
            return metrics.get_sample_value(metric, {"service": name, "topic": VISIT.name, **labels}) or 0

        await eventually(lambda: _true(sample("ejsika_consumer_rewinds_total", cause="systemic") >= 3))
        assert sample("ejsika_consumer_paused") == 1
        assert sample("ejsika_dead_letters_total", reason="handler_failed") == 0
        assert await service.pool.fetchval("SELECT count(*) FROM dead_letter_holds") == 0
        assert await service.pool.fetchval("SELECT count(*) FROM outbox") == 0, "no letter waits to be published"
        offsets = await committed(kafka_bootstrap, name)
        for partition, offset in where:
            assert offsets.get(partition, 0) <= offset, "no offset committed past a failing event"

        broken = False  # the fix is deployed
        await eventually(lambda: service.pool.fetchval(
            "SELECT count(DISTINCT event_id) = $2 FROM applied WHERE event_id = ANY($1::uuid[])",
            [e.id for e in mine], len(mine)))
        await eventually(lambda: _true(sample("ejsika_consumer_paused") == 0))
        times = await service.pool.fetch("SELECT event_id, count(*) AS n FROM applied"
                                         " WHERE event_id = ANY($1::uuid[]) GROUP BY event_id", [e.id for e in mine])
        assert {r["event_id"]: r["n"] for r in times} == {e.id: 1 for e in mine}, "each applied exactly once"
        await eventually(lambda: _past(kafka_bootstrap, name, where))
    assert await letters_of(kafka_bootstrap, name) == [], "nothing reached the dead-letter topic"


async def test_a_poison_event_is_a_dead_letter_with_its_headers_and_its_household_replays_in_order(
        running, kafka_bootstrap):
    household = uuid.uuid4()
    neighbour = next(h for h in iter(uuid.uuid4, None) if same_partition(h, household))  # same partition
    e1, e2, e3 = visit(household), visit(household), visit(neighbour)
    poisoned = {e1.id}

    async def handler(uow, events):
        for event in events:
            if event.id in poisoned:
                raise ValueError("visit kind not in the schedule")
        await record_all(uow.conn, events)
        last = {e.data.household_id: e.id for e in events}
        await uow.conn.execute(
            "INSERT INTO latest SELECT * FROM unnest($1::uuid[], $2::uuid[])"
            " ON CONFLICT (household_id) DO UPDATE SET event_id = excluded.event_id", list(last), list(last.values()))

    async with running(handler) as service:
        name = service.name
        (p1, o1), (p2, o2), (p3, o3) = await publish(kafka_bootstrap, [e1, e2, e3],
                                                    headers=[("ce_type", b"visit.scheduled")])
        assert p1 == p2 == p3

        async def applied() -> list[uuid.UUID]:
            rows = await service.pool.fetch("SELECT event_id FROM applied WHERE household_id = ANY($1::uuid[])"
                                            " ORDER BY seq", [household, neighbour])
            return [r["event_id"] for r in rows]

        # the partition moves on: the next record of that partition is applied and its offset committed
        await eventually(lambda: _has(applied, e3.id))
        await eventually(lambda: _past(kafka_bootstrap, name, [(p3, o3)]))
        assert await applied() == [e3.id], "e1 failed; e2 of the same household waits behind it"

        # the letters, read back from Kafka with every header
        letters = await eventually(lambda: _letters(kafka_bootstrap, name, household, 2))
        first, parked = letters
        assert first.value == e1.to_bytes() and first.key == e1.key()
        assert ("ce_type", b"visit.scheduled") in first.headers, "the record's own headers are kept"
        assert first.facts == {"reason": "handler_failed", "error": first.facts["error"], "attempts": "2",
                               "topic": VISIT.name, "partition": str(p1), "offset": str(o1), "group": name}
        assert first.facts["error"].startswith("ValueError: visit kind not in the schedule")
        assert parked.value == e2.to_bytes()
        assert (parked.facts["reason"], parked.facts["offset"]) == ("parked_behind", str(o2))

        # fixed; replayed out of order: e2 first waits again, e1 then e2 are applied in that order
        poisoned.clear()
        assert await replay(kafka_bootstrap, VISIT.name, {(parked.partition, parked.offset)}) == 1
        again = await eventually(lambda: _letters(kafka_bootstrap, name, household, 3))
        assert (again[2].facts["reason"], again[2].value) == ("parked_behind", e2.to_bytes())
        assert again[2].replayed_from == f"{parked.partition}:{parked.offset}"
        assert (REPLAYED_FOR, name.encode()) in again[2].headers, "replayed for this group only"
        assert await applied() == [e3.id]

        assert await replay(kafka_bootstrap, VISIT.name, {(first.partition, first.offset)}) == 1
        await eventually(lambda: _has(applied, e1.id))
        assert await service.pool.fetchval("SELECT count(*) FROM dead_letter_holds") == 1, "e2 still waits"

        assert await replay(kafka_bootstrap, VISIT.name, {(parked.partition, parked.offset)}) == 1
        await eventually(lambda: _has(applied, e2.id))
        assert await applied() == [e3.id, e1.id, e2.id], "the household's events in their order"
        assert await service.pool.fetchval("SELECT event_id FROM latest WHERE household_id = $1", household) == e2.id
        assert await service.pool.fetchval("SELECT count(*) FROM dead_letter_holds") == 0


def same_partition(a: uuid.UUID, b: uuid.UUID) -> bool:
    partitions = list(range(VISIT.partitions))
    partitioner = DefaultPartitioner()
    return partitioner(str(a).encode(), partitions, partitions) == partitioner(str(b).encode(), partitions, partitions)


async def _true(value: bool) -> bool:
    return value


async def _has(applied, event_id) -> bool:
    return event_id in await applied()


async def _past(bootstrap: str, group: str, where) -> bool:
    offsets = await committed(bootstrap, group)
    return all(offsets.get(partition, 0) > offset for partition, offset in where)


async def _letters(bootstrap: str, group: str, household: uuid.UUID, count: int):
    letters = [x for x in await letters_of(bootstrap, group) if x.key == str(household).encode()]
    return letters if len(letters) >= count else None


async def test_a_batch_s_offsets_are_committed_only_once_its_transaction_has_committed(running, kafka_bootstrap):
    """Committed before its transaction, a batch lost with its process (a crash, a kill) would never
    be read again: its events lost. The handler is held inside the transaction while Kafka is asked
    for the group's offsets."""
    mine = [visit() for _ in range(6)]
    where = dict(zip((e.id for e in mine), await publish(kafka_bootstrap, mine)))
    inside, release = asyncio.Event(), asyncio.Event()
    held: list = []

    async def handler(uow, events):
        await record_all(uow.conn, events)
        if not held and any(e.id in where for e in events):  # the first batch holding one of this test's events
            held.extend(e for e in events if e.id in where)
            inside.set()
            await release.wait()

    async with running(handler) as service:
        name = service.name
        await asyncio.wait_for(inside.wait(), 60)
        held_at = [where[e.id] for e in held]
        assert await service.pool.fetchval("SELECT count(*) FROM applied WHERE event_id = ANY($1::uuid[])",
                                           [e.id for e in held]) == 0, "the batch's transaction is still open"
        offsets = await committed(kafka_bootstrap, name)
        assert all(offsets.get(partition, 0) <= offset for partition, offset in held_at), \
            f"committed past the batch before its transaction: {offsets} for {held_at}"

        release.set()
        await eventually(lambda: _past(kafka_bootstrap, name, held_at))
        await eventually(lambda: _past(kafka_bootstrap, name, where.values()))
        rows = await service.pool.fetch("SELECT event_id, count(*) AS n FROM applied"
                                        " WHERE event_id = ANY($1::uuid[]) GROUP BY event_id", list(where))
        assert {r["event_id"]: r["n"] for r in rows} == {e.id: 1 for e in mine}
