"""Transactional outbox: events are rows written with the state change, published by the relay."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import asyncpg

from ejsika_contracts import Event, topic_of

Header = tuple[str, bytes]


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def event_headers(event: Event) -> list[tuple[str, str]]:
    return [("ce_id", str(event.id)), ("ce_type", event.type), ("correlation_id", str(event.correlation_id))]


def headers_json(event_id: str, event_type: str, correlation_id: str) -> str:
    """`event_headers` as the outbox stores them, from their text (for events serialised in bulk)."""
    return f'[["ce_id","{event_id}"],["ce_type",{json.dumps(event_type)}],["correlation_id","{correlation_id}"]]'


class Outbox:
    def __init__(self, schema: str) -> None:
        self.channel = notify_channel(schema)

    async def add(self, conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        """Add events; must run inside the caller's transaction."""
        await self._insert(
            conn, [(topic_of(e).name, e.key(), e.to_bytes(), json.dumps(event_headers(e))) for e in events]
        )

    async def add_records(
        self, conn: asyncpg.Connection, records: Sequence[tuple[str, bytes | None, bytes, list[Header]]]
    ) -> None:
        """Add raw records (topic, key, value, headers); must run inside the caller's transaction."""
        await self._insert(conn, [
            (topic, key, value, json.dumps([(n, v.decode("latin-1")) for n, v in headers]))
            for topic, key, value, headers in records
        ])

    async def copy_serialized(self, conn: asyncpg.Connection, event: type[Event],
                              rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Add events of one type already serialised, as (key, event id, correlation id, JSON), with COPY:
        for jobs announcing hundreds of thousands, where building each as a model cost more than the rest.
        The JSON must be the event's envelope as `Event.to_bytes` writes it (the schema tests hold it)."""
        topic = topic_of(event).name
        await conn.copy_records_to_table("outbox", columns=("topic", "key", "value", "headers"), records=[
            (topic, key.encode(), value.encode(), headers_json(event_id, event.event_type, correlation_id))
            for key, event_id, correlation_id, value in rows])
        await conn.execute("SELECT pg_notify($1, '')", self.channel)  # delivered at commit, as `add` does

    async def _insert(self, conn: asyncpg.Connection, rows: Sequence[tuple[str, bytes | None, bytes, str]]) -> None:
        if not rows:
            return
        topics, keys, values, headers = zip(*rows)
        # One round trip for the whole batch and the wake-up of the relay, which Postgres
        # delivers at commit, so the relay wakes only for rows it can see.
        await conn.execute(
            "WITH added AS (INSERT INTO outbox (topic, key, value, headers)"
            "  SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::json[]))"
            " SELECT pg_notify($5, '')",
            list(topics),
            list(keys),
            list(values),
            list(headers),
            self.channel,
        )


# ---- events written by SQL, in the statement that makes them ------------------------------------------
# For checks that emit one event per household over a million households (monitoring's period close and
# overdue check), where building each event as a model in Python cost more than all the SQL. The row is
# what `Outbox.add` writes for the same event: topic, key (the subject), the envelope's JSON with the
# fields of `Event` in their order, and the headers `event_headers` names. The frozen JSON Schemas hold
# them to the contract (the services' integration tests validate the rows against them).

# The time of the statement, once for all its rows, as pydantic writes an aware UTC datetime.
_SQL_NOW = "(SELECT to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"


def insert_events_sql(event: type[Event], source: str, rows: str) -> str:
    """`INSERT INTO outbox` one `event` per row of `rows` (a CTE or subquery with the columns
    household_id, correlation_id and data (json)), returning 1 per row.

    Used as a data-modifying CTE: `WITH …, added AS ({insert_events_sql(...)}) SELECT count(*) FROM added`,
    ended by `wake_relay_sql`. The envelope is concatenated rather than built with json_build_object (a
    third of monitoring's period close went there): every value put in it is a UUID, a time or a constant
    of ours, none needs escaping, and `data` is JSON already.
    """
    topic = topic_of(event).name
    kind = event.event_type
    return (
        "INSERT INTO outbox (topic, key, value, headers)"
        f" SELECT '{topic}', convert_to(e.subject, 'UTF8'),"
        f"  convert_to('{{\"id\":\"' || e.id || '\",\"type\":\"{kind}\",\"source\":\"{source}\",\"time\":\"'"
        f"   || {_SQL_NOW} || '\",\"subject\":\"' || e.subject || '\",\"specversion\":\"1.0\",\"dataversion\":{event.version},"
        "\"correlation_id\":\"' || e.correlation_id || '\",\"causation_id\":null,\"data\":' || e.data::text || '}', 'UTF8'),"
        f"  ('[[\"ce_id\",\"' || e.id || '\"],[\"ce_type\",\"{kind}\"],[\"correlation_id\",\"' || e.correlation_id"
        "   || '\"]]')::json"
        " FROM (SELECT gen_random_uuid() AS id, r.household_id::text AS subject, r.correlation_id, r.data"
        f"       FROM {rows} r ORDER BY r.household_id) AS e"
        " RETURNING 1"
    )


def wake_relay_sql(channel: str, added: str = "added") -> str:
    """The final SELECT of such a statement: how many events `added` wrote, and the relay's wake-up
    (Postgres delivers it at commit) when there were any."""
    return (f"SELECT count(*) AS added, CASE WHEN count(*) > 0 THEN pg_notify('{channel}', '') END AS woke"
            f" FROM {added}")


def decode_headers(raw: str | list) -> list[Header]:
    pairs = json.loads(raw) if isinstance(raw, str) else raw
    return [(name, value.encode("latin-1")) for name, value in pairs]
