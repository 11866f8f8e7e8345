"""The ledger check: what was accepted at the edge is applied exactly once wherever it must be.

Accepted at the edge are the households registered and the visits recorded through the HTTP APIs
(the ids their answers gave). From there the ledger follows every event of those households
through Kafka (read whole, from each topic's start) into every service that consumes its topic, and
counts in each service's schema, through SQL:

- lost: an accepted household with no `household.registered` in Kafka (or no row in the
  registry), an accepted visit with no `visit.recorded` or no visit record; an event of the
  households' topics missing from the inbox of a service that consumes that topic; a household that
  monitoring, eligibility or notifications never projected, that eligibility never assessed for its
  registration, or whose registry status never left `registered`; an eligible assessment that
  the agency's subscription never got a delivery for, or a delivery the agency's receiver never got.
- duplicate effects: two registry history entries caused by one event, two eligibility
  assessments of a household caused by one event, one notification received under two different
  `webhook-id`s, or one `webhook-id` received with two different bodies (receiver-side dedup by
  `webhook-id` would then keep one and lose the other).

Kafka may hold an event twice (at least once: a relay killed between publish and delete sends it
again); that is not a duplicate effect, and is counted apart (`redelivered`) to show the fault
was real. Dead letters are counted per dead-letter topic, for the ledger's households only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from ejsika_contracts import COMPLIANCE, ELIGIBILITY, HOUSEHOLD, VISIT

# Which service must apply the events of which topic (its consumers, as composed in each app.py).
CONSUMERS: dict[str, tuple[str, ...]] = {
    HOUSEHOLD.name: ("monitoring", "eligibility", "notifications"),
    ELIGIBILITY.name: ("registry", "notifications"),
    VISIT.name: ("registry", "eligibility", "notifications"),
    COMPLIANCE.name: ("eligibility", "notifications"),
}
# The events a consumer is given but that are not its business are still recorded in its inbox
# (`consumer.by_type`), so every event of a consumed topic is expected there.


@dataclass
class KafkaEvent:
    id: uuid.UUID
    type: str
    topic: str
    household_id: uuid.UUID
    data: dict
    copies: int = 1


@dataclass
class Findings:
    """What the ledger found; `lost` and `duplicates` name each finding (ids, never personal data)."""

    households: int = 0
    visits: int = 0
    events: int = 0  # distinct events of the ledger's households in Kafka
    redelivered: int = 0  # extra copies of them in Kafka (at least once at work)
    dead_letters: dict[str, int] = field(default_factory=dict)
    notifications: int = 0  # deliveries due to the agency
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.lost and not self.duplicates

    def summary(self) -> str:
        return (f"{len(self.lost)} lost, {len(self.duplicates)} duplicate effects; first: "
                f"{(self.lost + self.duplicates)[:5]}")


@dataclass
class Receipt:
    """One POST the agency's receiver accepted."""

    webhook_id: str
    body: dict


async def read_topics(bootstrap: str, topics: Iterable[str], households: set[uuid.UUID]) -> dict[str, list[dict]]:
    """Every record of `topics` (start to current end) keyed by one of `households`, decoded."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            numbers = await consumer._client.fetch_all_metadata()  # noqa: SLF001 - topics that exist now
            if topic not in numbers.topics():
                continue
            partitions += [TopicPartition(topic, p) for p in numbers.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        keys = {str(h).encode() for h in households}
        found: dict[str, list[dict]] = defaultdict(list)
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=2000, max_records=5000)
            for tp, records in batches.items():
                for record in records:
                    if record.key in keys:
                        try:
                            found[tp.topic].append({**json.loads(record.value), "_key": record.key.decode(),
                                                    "_headers": dict(record.headers or ())})
                        except (ValueError, TypeError):  # a poison record of a scenario: counted by key only
                            found[tp.topic].append({"_key": record.key.decode(), "_poison": True})
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return found
    finally:
        await consumer.stop()


def events_by_id(records: dict[str, list[dict]]) -> dict[uuid.UUID, KafkaEvent]:
    events: dict[uuid.UUID, KafkaEvent] = {}
    for topic in CONSUMERS:
        for record in records.get(topic, []):
            if record.get("_poison") or "id" not in record:
                continue
            event_id = uuid.UUID(record["id"])
            if event_id in events:
                events[event_id].copies += 1
                continue
            events[event_id] = KafkaEvent(event_id, record.get("type", "?"), topic, uuid.UUID(record["_key"]),
                                          record.get("data") or {})
    return events


async def _ids(conn: asyncpg.Connection, sql: str, *args) -> set:
    return {row[0] for row in await conn.fetch(sql, *args)}


async def check(database_url: str, bootstrap: str, households: Sequence[str], visits: Sequence[str], *,
                agency: str, url: str, receipts: Sequence[Receipt]) -> Findings:
    """Run the ledger over `households` and `visits` (accepted at the edge) and what `agency` received
    at `url` (its receiver's receipts; notifications of other households in them are not looked at)."""
    homes = {uuid.UUID(h) for h in households}
    seen_visits = {uuid.UUID(v) for v in visits}
    found = Findings(households=len(homes), visits=len(seen_visits))
    topics = [*CONSUMERS, *(f"{t}.dlq" for t in CONSUMERS)]
    records = await read_topics(bootstrap, topics, homes)
    events = events_by_id(records)
    found.events = len(events)
    found.redelivered = sum(e.copies - 1 for e in events.values())
    found.dead_letters = {t: len(records[t]) for t in records if t.endswith(".dlq") and records[t]}

    # A record dead-lettered by its consumers is not lost: it is counted with the dead letters.
    lettered = {record["id"] for topic, found_ in records.items() if topic.endswith(".dlq")
                for record in found_ if isinstance(record.get("id"), str)}
    events = {i: e for i, e in events.items() if str(i) not in lettered}
    registered: dict[uuid.UUID, KafkaEvent] = {}
    for event in events.values():  # the first: a later copy under a new id (a newer version) may change nothing
        if event.type == "household.registered":
            registered.setdefault(event.household_id, event)
    recorded_visits = {uuid.UUID(e.data["visit_id"]) for e in events.values()
                       if e.type == "visit.recorded" and "visit_id" in e.data}
    found.lost += [f"registry published no household.registered of {h}" for h in homes - registered.keys()]
    found.lost += [f"monitoring published no visit.recorded of visit {v}" for v in seen_visits - recorded_visits]

    conn = await asyncpg.connect(database_url)
    try:
        ids = list(homes)
        for service, table, column in [("registry", "households", "id"), ("monitoring", "households", "household_id"),
                                       ("eligibility", "households", "household_id"),
                                       ("notifications", "families", "household_id")]:
            present = await _ids(conn, f"SELECT {column} FROM {service}.{table} WHERE {column} = ANY($1::uuid[])", ids)
            found.lost += [f"{service}.{table} lacks household {h}" for h in homes - present]
        visit_rows = await _ids(conn, "SELECT visit_id FROM monitoring.visit_records WHERE visit_id = ANY($1::uuid[])",
                                list(seen_visits))
        found.lost += [f"monitoring.visit_records lacks visit {v}" for v in seen_visits - visit_rows]

        for topic, services in CONSUMERS.items():
            wanted = [e.id for e in events.values() if e.topic == topic]
            for service in services:
                applied = await _ids(conn, f"SELECT event_id FROM {service}.inbox WHERE event_id = ANY($1::uuid[])",
                                     wanted)
                found.lost += [f"{service} never applied {events[i].type} {i}" for i in set(wanted) - applied]

        unassessed = await _ids(conn, "SELECT id FROM registry.households WHERE id = ANY($1::uuid[])"
                                      " AND status = 'registered'", ids)
        found.lost += [f"registry never recorded an assessment of {h}" for h in unassessed]
        history = await conn.fetch("SELECT household_id, cause_id, count(*) AS n FROM registry.household_history"
                                   " WHERE household_id = ANY($1::uuid[]) AND cause_id IS NOT NULL"
                                   " GROUP BY 1, 2 HAVING count(*) > 1", ids)
        found.duplicates += [f"registry history of {r['household_id']} has {r['n']} entries caused by {r['cause_id']}"
                             for r in history]
        assessed = await conn.fetch("SELECT household_id, cause_id, count(*) AS n FROM eligibility.assessments"
                                    " WHERE household_id = ANY($1::uuid[]) GROUP BY 1, 2", ids)
        causes = {(r["household_id"], r["cause_id"]) for r in assessed}
        found.duplicates += [f"eligibility assessed {r['household_id']} {r['n']} times for event {r['cause_id']}"
                             for r in assessed if r["n"] > 1]
        found.lost += [f"eligibility never assessed {h} on its registration" for h, e in registered.items()
                       if (h, e.id) not in causes]

        due = {e.id: e.household_id for e in events.values()
               if e.type == "eligibility.assessed" and e.data.get("eligible") is True
               and str(e.data.get("region_code", "36")).startswith("36")}
        deliveries = await conn.fetch(
            "SELECT d.id, d.event_id, d.status FROM notifications.deliveries d"
            " JOIN notifications.subscriptions s ON s.id = d.subscription_id"
            " WHERE s.agency = $1 AND s.url = $3 AND s.event_type = 'eligibility.assessed'"
            " AND d.event_id = ANY($2::uuid[])",
            agency, list(due), url)
        found.notifications = len(deliveries)
        delivered_events = {r["event_id"] for r in deliveries}
        found.lost += [f"no delivery to {agency} of eligibility.assessed {e} ({h})" for e, h in due.items()
                       if e not in delivered_events]
    finally:
        await conn.close()

    webhooks_of: dict[str, set[str]] = defaultdict(set)  # notification id -> webhook-ids it came under
    bodies: dict[str, set[str]] = defaultdict(set)
    for receipt in receipts:
        bodies[receipt.webhook_id].add(json.dumps(receipt.body, sort_keys=True))
        for item in receipt.body.get("notifications", []):
            webhooks_of[item["id"]].add(receipt.webhook_id)
    found.duplicates += [f"webhook {w} received with {len(b)} different bodies" for w, b in bodies.items() if len(b) > 1]
    for row in deliveries:
        under = webhooks_of.get(str(row["id"]), set())
        if not under:
            found.lost += [f"{agency} never received notification {row['id']} (delivery {row['status']})"]
        elif len(under) > 1:
            found.duplicates += [f"notification {row['id']} received under {len(under)} webhook-ids"]
    return found


def run_check(*args, **kwargs) -> Findings:
    return asyncio.run(check(*args, **kwargs))
