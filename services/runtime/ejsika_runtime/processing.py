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
    await conn.execute(
        "INSERT INTO processing_records"
        " (subject, role, client_id, action, household_id, fields, channel, purpose, correlation_id)"
        " SELECT $1, $2, $3, $4, h, $5, $6, $7, $8 FROM unnest($9::uuid[]) AS h",
        processor.subject, processor.role, processor.client_id, action, list(fields), channel, purpose,
        correlation_id, ids,
    )


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
