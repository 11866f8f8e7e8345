"""The record of processing: who read, wrote or shared which fields of which family, and why.

Written in the owning service's schema; for a write, in the same transaction as the write, so a
change is never without its record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel

Action = Literal["read", "write", "share"]


@dataclass(frozen=True)
class Processor:
    """Who processes: a person or a client of the identity provider, or a service on an event."""

    subject: str
    role: str
    client_id: str | None = None


def insert_sql(households: str, first: int = 1) -> str:
    """The INSERT of records for the households `households` names (an SQL query of one uuid column),
    taking its values from parameters $first..$first+7 in `values`' order: the one statement both
    `record` and a write that records in its own SQL (`Caller.recording`) use."""
    a, b, c, d, e, f, g, h = (f"${first + i}" for i in range(8))
    return ("INSERT INTO processing_records"
            " (subject, role, client_id, action, household_id, fields, channel, purpose, correlation_id)"
            f" SELECT {a}::text, {b}::text, {c}::text, {d}::text, r.h, {e}::text[], {f}::text, {g}::text,"
            f" {h}::uuid FROM ({households}) AS r(h)")


def values(processor: Processor, action: Action, fields: Sequence[str], channel: str, purpose: str,
           correlation_id: UUID | None) -> list:
    return [processor.subject, processor.role, processor.client_id, action, list(fields), channel, purpose,
            correlation_id]


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    processor: Processor,
    action: Action,
    household_ids: Iterable[UUID],
    fields: Sequence[str],
    channel: str,
    purpose: str,
    correlation_id: UUID | None = None,
) -> None:
    ids = list(household_ids)
    if not ids:
        return
    await conn.execute(insert_sql("SELECT unnest($9::uuid[])"),
                       *values(processor, action, fields, channel, purpose, correlation_id), ids)


class ProcessingRecord(BaseModel):
    """One line of the record, as stored and as answered (`id` orders it)."""

    id: int
    at: datetime
    subject: str
    role: str
    client_id: str | None
    action: str
    household_id: UUID
    fields: list[str]
    channel: str
    purpose: str
    correlation_id: UUID | None


async def trail(
    conn: asyncpg.Connection | asyncpg.Pool, household_ids: Sequence[UUID], after: int = 0, limit: int = 100
) -> tuple[list[ProcessingRecord], int | None]:
    """The records of these households in the order they were written, a page at a time."""
    rows = await conn.fetch(
        "SELECT id, at, subject, role, client_id, action, household_id, fields, channel, purpose, correlation_id"
        " FROM processing_records WHERE household_id = ANY($1::uuid[]) AND id > $2 ORDER BY id LIMIT $3",
        list(household_ids), after, limit + 1,
    )
    page = [ProcessingRecord.model_validate(dict(r)) for r in rows[:limit]]
    return page, (page[-1].id if len(rows) > limit else None)
