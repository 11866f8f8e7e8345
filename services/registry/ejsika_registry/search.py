"""Finding households: by region, programme, enrolment status, data-quality flag or a person's NIK,
within the caller's caseload, area or programme, a page at a time in the order of their ids.

The caller's scope is a condition of the query (`scopes.condition`, the SQL of `scopes.covers`), so
a page is never thinned out after the fact and a cursor walks every household the caller may see
exactly once. A NIK is matched through its keyed hash only (`members.nik_digest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from ejsika_runtime import scopes
from ejsika_runtime.auth import Principal

VILLAGE_CODE_LENGTH = 10


@dataclass(frozen=True)
class Filters:
    region_prefix: str | None = None  # digits of a village code, e.g. 3672 (Kota Cilegon)
    programme: str | None = None
    enrolment_status: str | None = None  # in `programme` when it is given, else in any programme
    quality_flag: str | None = None  # an active member carries it
    nik_digest: bytes | None = None  # an active member's NIK, as its keyed hash


def region_range(prefix: str) -> tuple[str, str]:
    """The village codes starting with `prefix`, as a range: every code has 10 digits, so this holds
    in any collation and walks the index on region_code."""
    return prefix.ljust(VILLAGE_CODE_LENGTH, "0"), prefix.ljust(VILLAGE_CODE_LENGTH, "9")


class _Query:
    """Conditions and their numbered parameters."""

    def __init__(self, condition: str, values: list[Any]) -> None:
        self.where, self.args = [condition], list(values)

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, condition: str) -> None:
        self.where.append(condition)


def _conditions(caller: Principal, filters: Filters, after: UUID | None) -> _Query:
    query = _Query(*scopes.condition(caller, "s", 1))
    if after is not None:
        query.add(f"h.id > {query.param(after)}")
    if filters.region_prefix:
        low, high = region_range(filters.region_prefix)
        query.add(f"h.region_code BETWEEN {query.param(low)} AND {query.param(high)}")
    if filters.programme:
        query.add(f"h.programme = {query.param(filters.programme)}")
    if filters.enrolment_status:
        in_programme = f" AND e.programme = {query.param(filters.programme)}" if filters.programme else ""
        query.add("EXISTS (SELECT FROM enrolments e WHERE e.household_id = h.id"
                  f" AND e.status = {query.param(filters.enrolment_status)}{in_programme})")
    if filters.quality_flag:
        # The same predicate as the partial index members_flagged, so that it serves.
        query.add("EXISTS (SELECT FROM members m WHERE m.household_id = h.id AND m.ended_at IS NULL"
                  f" AND m.quality_flags <> '{{}}' AND m.quality_flags @> ARRAY[{query.param(filters.quality_flag)}::text])")
    if filters.nik_digest is not None:
        query.add("h.id IN (SELECT m.household_id FROM members m WHERE m.ended_at IS NULL"
                  f" AND m.nik_digest = {query.param(filters.nik_digest)})")
    return query


async def page(conn: asyncpg.Connection, caller: Principal, filters: Filters, after: UUID | None, limit: int
               ) -> tuple[list[dict[str, Any]], UUID | None]:
    """The summaries of the households matching `filters` that the caller covers, after `after` in
    id order; and the id the next page starts after (None at the end)."""
    query = _conditions(caller, filters, after)
    limit_param = query.param(limit + 1)
    rows = await conn.fetch(
        "WITH found AS (SELECT h.id FROM households h JOIN household_scope s ON s.household_id = h.id"
        f" WHERE {' AND '.join(query.where)} ORDER BY h.id LIMIT {limit_param})"
        " SELECT h.id, h.programme, h.region_code, h.status, h.version, h.updated_at,"
        "  (SELECT count(*) FROM members m WHERE m.household_id = h.id AND m.ended_at IS NULL) AS member_count,"
        "  (SELECT coalesce(array_agg(DISTINCT f ORDER BY f), '{}') FROM members m, unnest(m.quality_flags) f"
        "    WHERE m.household_id = h.id AND m.ended_at IS NULL) AS quality_flags,"
        "  (SELECT coalesce(array_agg(e.programme || ':' || e.status ORDER BY e.programme), '{}') FROM enrolments e"
        "    WHERE e.household_id = h.id) AS enrolments"
        " FROM found JOIN households h USING (id) ORDER BY h.id",
        *query.args,
    )
    items = [_summary(r) for r in rows[:limit]]
    return items, items[-1]["id"] if len(rows) > limit else None


def _summary(row: asyncpg.Record) -> dict[str, Any]:
    enrolments = [dict(zip(("programme", "status"), e.split(":", 1))) for e in row["enrolments"]]
    return {**dict(row), "enrolments": enrolments}
