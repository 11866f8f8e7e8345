"""The outbox relay: publishes committed outbox rows to Kafka in id order, then deletes them.

Only one relay per schema publishes at a time: it holds a Postgres advisory lock for as long as
its connection lives, and replicas wait to take over. One publisher keeps the per-household order
of the outbox all the way into Kafka, which several publishers racing on `SKIP LOCKED` would not.

Each round is settled per partition: what Kafka acknowledged is deleted, and a partition stops at
its first failure so that nothing behind a failed row overtakes it. A row Kafka can never take as
it is (too large for the topic, a topic that does not exist, not serialisable) would stop its
partition forever: it is moved to `outbox_quarantine` instead, with the reason, and counted
(`ejsika_outbox_quarantined_total`, `ejsika_outbox_quarantine_rows`) so that an alert fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from aiokafka.partitioner import DefaultPartitioner

from .db import DEFAULT_POLICY, ConnectionPolicy, connect
from .metrics import RuntimeMetrics
from .outbox import decode_headers, notify_channel

log = logging.getLogger(__name__)

# The producer's own default (Kafka's murmur2 of the key): a household's events land on the
# partition any Kafka client would choose for its id.
PARTITIONER = DefaultPartitioner()

# What the broker answers about the records of a batch that no retry will change. Sent alone, the
# row that caused it is quarantined; sent with others, each is tried alone to find which one it was.
RECORD_ERRORS: dict[type[KafkaError], str] = {
    MessageSizeTooLargeError: "too_large",
    RecordListTooLargeError: "too_large",
    CorruptRecordException: "invalid_record",
    InvalidTopicError: "invalid_topic",
}

# The relay's session. Its writes (deleting what Kafka acknowledged, moving a row to the quarantine) do not
# wait for the WAL to reach the disk: one lost in a crash of PostgreSQL puts its rows back in the outbox, to
# be published again and ignored by the consumers' inboxes (at least once, effect once), and a lost
# quarantine is redone when the broker refuses the row again. Every event's path waited a disk flush a
# round, behind whatever else the disk was writing; the outbox rows themselves are written, durably, by
# the transactions that emit them.
SESSION_SETTINGS = {"synchronous_commit": "off"}

# The relay is healthy while a round (publishing, or waiting as a follower) succeeded this recently.
HEALTHY_WITHIN_S = 30.0
# While a backlog drains in full rounds, the outbox gauges are still reported this often.
REPORT_EVERY_S = 5.0
# A topic the broker does not know may be one just created (its metadata takes a moment to reach
# every broker) or about to be: its rows wait this long before they are quarantined.
UNKNOWN_TOPIC_GRACE_S = 60.0


@dataclass(frozen=True)
class Rejected:
    """A row that will never be published as it is; `error` names the cause, never the payload."""

    id: int
    topic: str
    partition: int | None
    reason: str
    error: str


@dataclass
class PartitionOutcome:
    topic: str
    partition: int
    published: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    failed_row: int | None = None  # the first row not published: the partition waits from here
    error: BaseException | None = None
    renew: bool = False  # the producer's state for this partition is spent


@dataclass
class Round:
    """What one round did: rows fetched, acknowledged, quarantined, and the partitions that stopped."""

    fetched: int = 0
    published: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    stopped: list[PartitionOutcome] = field(default_factory=list)
    waiting: int = 0  # rows of a topic the broker does not know (yet), left in the outbox

    @property
    def clean(self) -> bool:
        return not self.stopped and not self.waiting


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
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
        healthy_within_s: float = HEALTHY_WITHIN_S,
        unknown_topic_grace_s: float = UNKNOWN_TOPIC_GRACE_S,
    ) -> None:
        self.database_url, self.schema, self.producer, self.metrics = database_url, schema, producer, metrics
        # A command timeout and keepalives: a half-open leader connection fails a statement (and
        # the relay leads again) instead of hanging while the server keeps its lock for it.
        self.connection_policy = connection_policy
        self.batch_size, self.poll_interval_s = batch_size, poll_interval_s
        # A failed batch leaves the idempotent producer's sequence for its partition past what the
        # broker has, so every later batch there would fail too: a new producer starts afresh.
        self.producer_factory = producer_factory
        self.healthy_within_s, self.unknown_topic_grace_s = healthy_within_s, unknown_topic_grace_s
        self._unknown_since: dict[str, float] = {}  # topics the broker said it did not have, since when
        self._wake = asyncio.Event()
        self._partitions: dict[str, list[int]] = {}
        self._alone: set[int] = set()  # rows of a rejected batch, each to be tried in a batch of its own
        self._failing: dict[tuple[str, int], str] = {}  # partitions stopped, by the error's name
        self._failing_topics: set[str] = set()  # topics whose rows wait, logged once
        self._renew = False
        self._reported_at = 0.0
        self._interrupted: str | None = None  # the error of the outage going on, logged at its start
        self.last_success: float | None = None  # time.monotonic() of the last successful round
        self.is_leader = False

    def healthy(self) -> bool:
        """Whether a round succeeded lately (for readiness): the relay neither stalls nor keeps failing."""
        return self.last_success is not None and time.monotonic() - self.last_success <= self.healthy_within_s

    def _succeeded(self) -> None:
        self.last_success, self._interrupted = time.monotonic(), None

    async def run(self) -> None:
        """Forever: become the leader, publish until the connection breaks, then start again."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # database or broker away: wait, then try to lead again
                self.is_leader = False
                # Once per outage with its cause; the retries of the same outage are not news.
                if type(error).__name__ != self._interrupted:
                    log.warning("outbox relay interrupted; retrying every %.1f s", self.poll_interval_s,
                                exc_info=error)
                self._interrupted = type(error).__name__
                await asyncio.sleep(self.poll_interval_s)

    async def connect(self) -> asyncpg.Connection:
        """The relay's own connection: in its schema, with SESSION_SETTINGS."""
        return await connect(self.database_url, policy=self.connection_policy,
                             server_settings={"search_path": self.schema, **SESSION_SETTINGS})

    async def _lead(self) -> None:
        conn = await self.connect()
        try:
            lock = zlib.crc32(f"relay:{self.schema}".encode())
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
                await self._report(conn)
                self._succeeded()  # a follower waiting its turn is healthy
                await asyncio.sleep(self.poll_interval_s)
            self.is_leader = True
            self._partitions.clear()  # a topic may have grown while another replica led
            await conn.add_listener(notify_channel(self.schema), lambda *_: self._wake.set())
            while True:
                self._wake.clear()
                try:
                    done = await self.publish_batch(conn)
                except Exception:
                    with contextlib.suppress(Exception):  # the gauges on this path too, if the connection can
                        await self._report(conn)
                    raise
                if done.clean:
                    self._succeeded()
                # More to do at once: a full round, or rows behind a refused batch or a quarantined row.
                busy = done.clean and (done.fetched >= self.batch_size or bool(done.rejected or self._alone))
                # The gauges every REPORT_EVERY_S while rows keep coming, and once the outbox goes quiet:
                # a report per round was a statement per round, as many as the rounds themselves.
                if time.monotonic() - self._reported_at >= REPORT_EVERY_S:
                    await self._report(conn)
                if not busy:
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
                    except asyncio.TimeoutError:
                        await self._report(conn)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await conn.close()

    async def publish_batch(self, conn: asyncpg.Connection) -> Round:
        """One round: publish the oldest rows, delete what Kafka acknowledged, quarantine what it never will."""
        if self._renew:
            await self._renew_producer()
        rows = await conn.fetch(
            "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1",
            self.batch_size,
        )
        done = Round(fetched=len(rows))
        if not rows:
            return done
        by_partition, rejected, waiting = await self._partition(rows)
        # All partitions at once, and acks awaited together: awaiting each costs ~15x.
        outcomes = await asyncio.gather(*(self._send(topic, partition, records)
                                          for (topic, partition), records in by_partition.items()))
        for outcome in outcomes:
            done.published += outcome.published
            rejected += outcome.rejected
            if outcome.error is not None:
                done.stopped.append(outcome)
        done.rejected = rejected
        done.waiting = waiting
        if done.published:
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", done.published)
            self.metrics.published.inc(len(done.published))
        if rejected:
            await quarantine(conn, rejected)
            for row in rejected:
                self.metrics.quarantined(row.topic, row.reason)
                log.error("outbox row %d to %s[%s] quarantined (%s): %s; the rows behind it go on",
                          row.id, row.topic, "?" if row.partition is None else row.partition, row.reason, row.error)
        self._note(outcomes)
        return done

    async def _partition(
        self, rows: Sequence[asyncpg.Record]
    ) -> tuple[dict[tuple[str, int], list[tuple[asyncpg.Record, dict]]], list[Rejected], int]:
        """Rows by their topic's partition, each with its Kafka record; the rows that have none; and
        how many wait for a topic the broker does not know yet."""
        by_partition: dict[tuple[str, int], list[tuple[asyncpg.Record, dict]]] = {}
        rejected: list[Rejected] = []
        missing: set[str] = set()
        waiting = 0
        for row in rows:
            topic = row["topic"]
            partitions = None if topic in missing else (self._partitions.get(topic)
                                                        or await self._load_partitions(topic))
            if partitions is None:
                missing.add(topic)
                since = self._unknown_since.setdefault(topic, time.monotonic())
                if time.monotonic() - since < self.unknown_topic_grace_s:
                    if topic not in self._failing_topics:
                        log.warning("outbox rows for %s wait: the broker has no such topic (quarantined after"
                                    " %.0f s)", topic, self.unknown_topic_grace_s)
                        self._failing_topics.add(topic)
                    waiting += 1
                    continue
                rejected.append(Rejected(row["id"], topic, None, "unknown_topic", "the broker has no such topic"))
                continue
            self._unknown_since.pop(topic, None)
            self._failing_topics.discard(topic)
            partition = PARTITIONER(row["key"], partitions, partitions)
            try:
                record = kafka_record(row)
            except (ValueError, TypeError, AttributeError) as error:
                # The class only: the message of a decoding error may quote the text it failed on.
                rejected.append(Rejected(row["id"], topic, partition, "serialisation", type(error).__name__))
                continue
            by_partition.setdefault((topic, partition), []).append((row, record))
        return by_partition, rejected, waiting

    async def _send(self, topic: str, partition: int, rows: list[tuple[asyncpg.Record, dict]]) -> PartitionOutcome:
        """Hand one partition's rows to Kafka as whole batches, in outbox order, until one fails.

        Each batch waits for the one before it: had an earlier batch failed, a later one would land
        ahead of its rows. (The partitions go in parallel; most rounds are one batch per partition.)
        Why not `producer.send` per record: its future and accumulator pass per record were most of
        the relay's CPU, in a process that also runs the service.
        """
        outcome = PartitionOutcome(topic, partition)
        start = 0
        while start < len(rows):
            batch, taken = self.producer.create_batch(), []
            for row, record in rows[start:]:
                if taken and (row["id"] in self._alone or taken[0]["id"] in self._alone):
                    break  # a suspect of a rejected batch goes alone
                if batch.append(**record) is None:  # full (aiokafka always takes a batch's first record)
                    break
                taken.append(row)
            # Closed, the batch is sent at once: an open one lingers `linger_ms` for records that
            # `producer.send` might add, and none will (each hop of an event waited those 5 ms).
            batch.close()
            ids = [row["id"] for row in taken]
            try:
                await (await self.producer.send_batch(batch, topic, partition=partition))
            except tuple(RECORD_ERRORS) as error:
                # The broker refused the batch for what it holds. Its sequence number is spent, so
                # the producer must be renewed before this partition takes another batch.
                outcome.renew = True
                if len(taken) == 1:
                    outcome.rejected.append(Rejected(ids[0], topic, partition, RECORD_ERRORS[type(error)], str(error)))
                    self._alone.discard(ids[0])
                else:  # one of them, or only their sum, is too much: next round each goes alone
                    self._alone.update(ids)
                    log.warning("outbox rows %d..%d to %s[%d] refused together (%s); trying each alone",
                                ids[0], ids[-1], topic, partition, type(error).__name__)
                return outcome
            except Exception as error:  # the broker away, a timeout, a fenced producer: retried next round
                outcome.failed_row, outcome.error, outcome.renew = ids[0], error, True
                return outcome
            outcome.published += ids
            self._alone.difference_update(ids)
            start += len(taken)
        return outcome

    def _note(self, outcomes: Sequence[PartitionOutcome]) -> None:
        """Log a stopped partition once per streak (with the row it waits at), count it, and renew the producer."""
        for outcome in outcomes:
            where = (outcome.topic, outcome.partition)
            self._renew = self._renew or outcome.renew
            if outcome.error is None:
                if self._failing.pop(where, None) is not None:
                    log.info("outbox relay publishes to %s[%d] again", *where)
                continue
            name = type(outcome.error).__name__
            self._partitions.pop(outcome.topic, None)  # the topic may be gone or have grown
            self.metrics.publish_failed(name)
            if self._failing.get(where) != name:
                log.warning("outbox row %d to %s[%d] not published (%s: %s); the partition waits",
                            outcome.failed_row, *where, name, outcome.error)
            self._failing[where] = name

    async def _renew_producer(self) -> None:
        if self.producer_factory is None:
            self._renew = False
            return
        with contextlib.suppress(Exception):  # a broken producer may fail to stop; it is dropped anyway
            await self.producer.stop()
        producer = self.producer_factory()
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self.producer, self._renew = producer, False
        self._partitions.clear()
        log.debug("outbox relay renewed its Kafka producer")

    async def _load_partitions(self, topic: str) -> list[int] | None:
        """The topic's partitions, or None when the broker says it has no such topic.

        `partitions_for` alone would wait out the request timeout (40 s) for a missing topic, every
        partition of the round with it, and then could not tell "missing" from "broker away".
        """
        client = self.producer.client
        if client.cluster.partitions_for_topic(topic) is None:
            cluster = await client.fetch_all_metadata()  # raises when no broker answers
            if topic not in cluster.topics():
                return None
        self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
        return self._partitions[topic]

    async def _report(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            "SELECT count(*) AS pending, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age,"
            " (SELECT count(*) FROM outbox_quarantine) AS quarantined"
            " FROM outbox"
        )
        self.metrics.outbox_pending.set(row["pending"])
        self.metrics.outbox_oldest_age.set(float(row["age"]))
        self.metrics.outbox_quarantine_rows.set(row["quarantined"])
        self._reported_at = time.monotonic()


def kafka_record(row: asyncpg.Record) -> dict:
    """The arguments of `BatchBuilder.append` for an outbox row; ValueError/TypeError if it has none."""
    headers = decode_headers(row["headers"])
    if not all(isinstance(name, str) and isinstance(value, bytes) for name, value in headers):
        raise TypeError("headers must be (name, value) pairs of text")
    if not isinstance(row["value"], bytes) or not isinstance(row["key"], (bytes, type(None))):
        raise TypeError("key and value must be bytes")
    return {"key": row["key"], "value": row["value"], "timestamp": None, "headers": headers}


async def quarantine(conn: asyncpg.Connection, rows: Sequence[Rejected]) -> None:
    """Move `rows` from the outbox to the quarantine, with their reasons, in one statement."""
    await conn.execute(
        "WITH why AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[])"
        "               AS w(id, partition, reason, error)),"
        " moved AS (DELETE FROM outbox o USING why WHERE o.id = why.id"
        "           RETURNING o.id, o.topic, o.key, o.value, o.headers, o.created_at, why.partition, why.reason,"
        "                     why.error)"
        " INSERT INTO outbox_quarantine (id, topic, key, value, headers, created_at, partition, reason, error)"
        " SELECT * FROM moved ON CONFLICT (id) DO NOTHING",
        [r.id for r in rows], [r.partition for r in rows], [r.reason for r in rows], [r.error for r in rows],
    )


async def release(conn: asyncpg.Connection, ids: Sequence[int] | None = None) -> int:
    """Put quarantined rows (all of them, or `ids`) back in the outbox, once their cause is fixed.

    They go to the end of the outbox, behind the events of their households published since: a
    consumer that guards with the household's version refuses a stale one. Returns how many moved.
    """
    moved = await conn.fetchval(
        "WITH back AS (DELETE FROM outbox_quarantine WHERE $1::bigint[] IS NULL OR id = ANY($1::bigint[])"
        "              RETURNING id, topic, key, value, headers),"
        " added AS (INSERT INTO outbox (topic, key, value, headers)"
        "           SELECT topic, key, value, headers FROM back ORDER BY id RETURNING 1)"
        " SELECT count(*) FROM added",
        None if ids is None else list(ids),
    )
    return int(moved)
