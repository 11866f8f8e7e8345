"""Holds: a household's events keep their order across a dead letter and its replay.

When a consumer dead-letters a record, the record's key (the household) is held in that consumer's
schema (table `dead_letter_holds`) until the letter's replay is applied. Meanwhile every later record
of the key on that topic is parked: dead-lettered too, with the reason `parked_behind`, and held in
turn. A replay (`ejsika dead-letters replay`, which republishes a topic's letters oldest first) then
applies them in the order they first came: a replayed record is applied only when it is the oldest
letter of its key; a younger one is parked again. So e1 dead-lettered, e2 parked, and a replay of
e1 and e2 (in either order, together or apart) ends with e2's effect, never e1's over it.

The same rows make dead-lettering idempotent: a record redelivered after a rewind that already has a
letter is passed over, not dead-lettered twice (a livelock otherwise, when a pass is cut short).

This is the runtime's order guarantee per key and topic; across topics, handlers still guard with
the household `version` that registry events carry (monitoring's members, eligibility's inputs).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from uuid import UUID

import asyncpg
from aiokafka.structs import ConsumerRecord

from ejsika_contracts import Event

# Not under the dead-letter prefix: they must survive the record's next trip to the dead-letter topic.
REPLAYED_FROM = "ejsika-replayed-from"
# The consumer group whose letter a replayed record is. The other groups of the topic applied it (or
# hold their own letter of it): they pass it over, even once their inbox has forgotten its id.
REPLAYED_FOR = "ejsika-replayed-for"


def letter_of(key: bytes | None, value: bytes) -> bytes:
    """What identifies a record across its trips to the dead-letter topic and back: its key and bytes."""
    digest = hashlib.sha256()
    digest.update(b"\x00" if key is None else b"\x01" + len(key).to_bytes(4, "big") + key)
    digest.update(value)
    return digest.digest()


@dataclass(frozen=True)
class Arrival:
    """A record as the consumer read it: the event it carries, or why it is not one."""

    record: ConsumerRecord
    event: Event | None
    invalid: str | None = None  # why the record is not an event of its topic

    @property
    def key(self) -> bytes | None:
        return self.record.key

    @cached_property
    def letter(self) -> bytes:
        return letter_of(self.record.key, self.record.value or b"")

    @property
    def replayed(self) -> bool:
        return any(name == REPLAYED_FROM for name, _ in self.record.headers or ())

    @property
    def replayed_for(self) -> str | None:
        return next((v.decode(errors="replace") for n, v in self.record.headers or () if n == REPLAYED_FOR), None)


class Verdict(enum.Enum):
    APPLY = "apply"
    INVALID = "invalid"  # dead-lettered as not an event of the topic
    PARK = "parked_behind"  # dead-lettered to wait behind an older letter of its key
    PASS = "pass"  # already dead-lettered (a redelivery), or applied already: nothing to do


@dataclass
class Holds:
    """The held keys of one topic as a batch goes through them, and the rows to add and remove.

    Decisions are made in the batch's order; `failed` and `applied` tell it how an APPLY turned out,
    which decides what follows of the same key.
    """

    queues: dict[bytes | None, list[bytes]]  # key -> its letters, oldest first (None: unkeyed letters)
    group: str | None = None  # the consumer's group: replays of other groups' letters are passed over
    applied_ids: set[UUID] = field(default_factory=set)  # of held keys' events already in the inbox
    added: list[tuple[Arrival, str]] = field(default_factory=list)  # new rows: (arrival, reason)
    released: list[bytes] = field(default_factory=list)  # letters whose replay was applied

    def admit(self, arrival: Arrival) -> Verdict:
        if arrival.replayed_for not in (None, self.group):
            return Verdict.PASS
        queue = self.queues.get(arrival.key, [])
        letter = arrival.letter
        if letter in queue:  # one of our own letters: a redelivery, or a replay
            if not arrival.replayed:
                return Verdict.PASS
            if arrival.key is None or queue[0] == letter:
                return Verdict.INVALID if arrival.event is None else Verdict.APPLY
            return Verdict.INVALID if arrival.event is None else Verdict.PARK
        if arrival.event is None:
            self._hold(arrival, Verdict.INVALID.value)
            return Verdict.INVALID
        if arrival.key is not None and queue:
            if arrival.event.id in self.applied_ids:
                return Verdict.PASS
            self._hold(arrival, Verdict.PARK.value)
            return Verdict.PARK
        return Verdict.APPLY

    def applied(self, arrival: Arrival) -> None:
        queue = self.queues.get(arrival.key)
        if queue and arrival.letter in queue:  # admitted: the oldest of its key, or unkeyed
            queue.remove(arrival.letter)
            self.released.append(arrival.letter)

    def failed(self, arrival: Arrival, reason: str) -> None:
        """An APPLY that failed for good becomes a letter; its key's later events park behind it."""
        if arrival.letter not in self.queues.get(arrival.key, ()):
            self._hold(arrival, reason)

    def held(self, key: bytes | None) -> bool:
        return key is not None and bool(self.queues.get(key))

    def _hold(self, arrival: Arrival, reason: str) -> None:
        self.queues.setdefault(arrival.key, []).append(arrival.letter)
        self.added.append((arrival, reason))


async def load(conn: asyncpg.Connection, topic: str, group: str, arrivals: Sequence[Arrival]) -> Holds:
    """The holds that concern `arrivals`: their keys' letters and their own (one query)."""
    keys = list({a.key for a in arrivals if a.key is not None})
    letters = [a.letter for a in arrivals]
    rows = await conn.fetch(
        "SELECT key, letter FROM dead_letter_holds WHERE topic = $1"
        " AND (key = ANY($2::bytea[]) OR letter = ANY($3::bytea[])) ORDER BY seq",
        topic, keys, letters,
    )
    queues: dict[bytes | None, list[bytes]] = {}
    for row in rows:
        queues.setdefault(row["key"], []).append(row["letter"])
    holds = Holds(queues, group)
    if rows:  # a held key's event that was applied before (an earlier rewind) is not parked
        ids = [a.event.id for a in arrivals if a.event is not None and a.key in queues]
        if ids:
            holds.applied_ids = {r["event_id"] for r in await conn.fetch(
                "SELECT event_id FROM inbox WHERE event_id = ANY($1::uuid[])", ids)}
    return holds


async def save(conn: asyncpg.Connection, topic: str, holds: Holds) -> None:
    """Add the new holds and drop the released ones, inside the batch's transaction."""
    if holds.added:
        await conn.execute(
            "INSERT INTO dead_letter_holds (topic, key, letter, event_id, reason)"
            " SELECT $1, * FROM unnest($2::bytea[], $3::bytea[], $4::uuid[], $5::text[])"
            " ON CONFLICT (topic, letter) DO NOTHING",
            topic,
            [a.key for a, _ in holds.added], [a.letter for a, _ in holds.added],
            [a.event.id if a.event is not None else None for a, _ in holds.added],
            [reason for _, reason in holds.added],
        )
    if holds.released:
        await conn.execute("DELETE FROM dead_letter_holds WHERE topic = $1 AND letter = ANY($2::bytea[])",
                           topic, holds.released)


async def forget(conn: asyncpg.Connection, topic: str, letters: Iterable[bytes]) -> int:
    """Give up on letters (never to be replayed): the events held behind them are replayed next."""
    done = await conn.execute("DELETE FROM dead_letter_holds WHERE topic = $1 AND letter = ANY($2::bytea[])",
                              topic, list(letters))
    return int(done.split()[-1])
