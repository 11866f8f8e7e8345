"""Use cases: quotas with their funders, the line of eligible candidates, and admissions into the quotas.

Who is admitted is `domain.quotas`'s rule; this module reads the state it needs (the current decisions of
E1's `decisions`, the enrolment status of `households`), and announces each admission as `quota.admitted`,
which the registry applies (the candidate becomes active).

Allocation runs in `allocation_loop`, a background loop of the service, every few seconds, and at once in the
transaction of a quota change. Not inside the consumers' batches, on purpose: two transactions that saw the
same free place would both fill it, so allocation of a quota is serialised by locking the quota's row; in the
consumers that lock would serialise every batch of every partition (each touches every region) and slow live
assessment. The loop reads the state, not the events, so it needs nothing from the consumers, it sees in one
pass everything the batches changed since the last, and it is idempotent: running it again, or after a
redelivery, admits nobody twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from ejsika_contracts import FunderShare, QuotaAdmitted, QuotaAdmittedData
from ejsika_runtime.logs import correlation_id
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import UnitOfWork, unit_of_work

from .domain.quotas import Admission, Candidate, Funder, Quota, Usage, allocate, room

log = logging.getLogger(__name__)
SOURCE = "eligibility"
DEFAULTS = Path(__file__).parent / "quotas"
LAST_DAY = date(9999, 12, 31)  # a candidate whose registration day is unknown waits behind the others

Cell = tuple[str, int, str]  # programme, year, region (4 digits)


@dataclass(frozen=True)
class StoredQuota:
    quota: Quota
    version: int
    updated_by: str
    updated_at: Any


class StaleQuota(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the current version is {current}")
        self.current = current


class QuotaVersionMissing(Exception):
    """A change of an existing quota must name the version it was based on."""


def _quota(row: asyncpg.Record) -> StoredQuota:
    funders = tuple(Funder(f["funder"], float(f["share"])) for f in json.loads(row["funders"]))
    return StoredQuota(Quota(row["programme"], row["year"], row["region_code"], row["families"], row["budget"],
                             funders), row["version"], row["updated_by"], row["updated_at"])


_COLUMNS = "programme, year, region_code, families, budget, funders, version, updated_by, updated_at"


async def find(conn: asyncpg.Connection | asyncpg.Pool, cell: Cell) -> StoredQuota | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM quotas WHERE programme = $1 AND year = $2 AND region_code = $3",
                              *cell)
    return _quota(row) if row else None


async def listed(conn: asyncpg.Connection | asyncpg.Pool, programme: str | None, year: int | None,
                 after: Cell | None, limit: int) -> tuple[list[StoredQuota], Cell | None]:
    """Quotas in (programme, year, region) order, from after `after`; and the position of the next page."""
    p, y, r = after or (None, None, None)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM quotas WHERE ($1::text IS NULL OR programme = $1) AND ($2::int IS NULL OR year = $2)"
        " AND ($3::text IS NULL OR (programme, year, region_code) > ($3, $4::smallint, $5::text))"
        " ORDER BY programme, year, region_code LIMIT $6",
        programme, year, p, y, r, limit + 1)
    found = [_quota(r) for r in rows[:limit]]
    last = found[-1].quota if len(rows) > limit else None
    return found, (last.programme, last.year, last.region) if last else None


async def put(uow: UnitOfWork, quota: Quota, expected_version: int | None, author: str) -> tuple[StoredQuota, bool]:
    """Set a quota (created, or changed from `expected_version`), then allocate it again at once.

    Answers the stored quota and whether it was created. Raises QuotaVersionMissing or StaleQuota.
    """
    cell = (quota.programme, quota.year, quota.region)
    current = await uow.conn.fetchrow(
        "SELECT version FROM quotas WHERE programme = $1 AND year = $2 AND region_code = $3 FOR UPDATE", *cell)
    if current is not None and expected_version is None:
        raise QuotaVersionMissing()
    if expected_version is not None and (current is None or current["version"] != expected_version):
        raise StaleQuota(current["version"] if current else 0)
    funders = json.dumps([{"funder": f.funder, "share": f.share} for f in quota.funders])
    row = await uow.conn.fetchrow(
        "INSERT INTO quotas (programme, year, region_code, families, budget, funders, updated_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (programme, year, region_code) DO UPDATE SET families = excluded.families,"
        " budget = excluded.budget, funders = excluded.funders, updated_by = excluded.updated_by,"
        " updated_at = now(), version = quotas.version + 1"
        f" RETURNING {_COLUMNS}",
        *cell, quota.families, quota.budget, funders, author)
    await allocate_cells(uow, [cell])
    return _quota(row), current is None


async def seed_defaults(conn: asyncpg.Connection, folder: Path = DEFAULTS) -> int:
    """The quotas shipped as data (quotas/<year>.json), where none is set yet; answers how many went in."""
    rows = []
    for path in sorted(folder.glob("*.json")):
        document = json.loads(path.read_text())
        for q in document["quotas"]:
            rows.append((q["programme"], document["year"], q["region"], q["families"], q["budget"],
                         json.dumps(q["funders"])))
    if not rows:
        return 0
    done = await conn.fetch(
        "INSERT INTO quotas (programme, year, region_code, families, budget, funders, updated_by)"
        " SELECT p, y, r, f, b, fu, 'defaults' FROM unnest($1::text[], $2::smallint[], $3::text[], $4::int[],"
        "   $5::bigint[], $6::json[]) AS u(p, y, r, f, b, fu)"
        " ON CONFLICT DO NOTHING RETURNING programme", *map(list, zip(*rows)))
    return len(done)


async def usage(conn: asyncpg.Connection | asyncpg.Pool, cells: Sequence[tuple[str, str]]
                ) -> dict[tuple[str, str], tuple[Usage, Usage]]:
    """Per (programme, region): the places held by active or suspended families, and by admissions the
    registry has not applied yet (each with its families and yearly amounts)."""
    if not cells:
        return {}
    programmes, regions = [c[0] for c in cells], [c[1] for c in cells]
    rows = await conn.fetch(
        "WITH cell AS (SELECT * FROM unnest($1::text[], $2::text[]) AS c(programme, region))"
        " SELECT 'held' AS kind, h.programme, left(h.region_code, 4) AS region, count(*)::int AS families,"
        "   coalesce(sum(d.yearly_amount), 0)::bigint AS amount"
        " FROM households h LEFT JOIN decisions d ON d.household_id = h.household_id"
        "   AND d.programme = h.programme AND d.active_rule"
        " WHERE h.enrolment_status IN ('active', 'suspended')"
        "   AND (h.programme, left(h.region_code, 4)) IN (SELECT programme, region FROM cell)"
        " GROUP BY 2, 3"
        " UNION ALL"
        " SELECT 'pending', a.programme, a.region_code, count(*)::int, coalesce(sum(a.yearly_amount), 0)::bigint"
        " FROM admissions a JOIN households h ON h.household_id = a.household_id"
        " WHERE a.settled_at IS NULL AND h.enrolment_status = 'candidate'"
        "   AND (a.programme, a.region_code) IN (SELECT programme, region FROM cell)"
        " GROUP BY 2, 3",
        programmes, regions)
    found: dict[tuple[str, str], dict[str, Usage]] = {}
    for r in rows:
        found.setdefault((r["programme"], r["region"]), {})[r["kind"]] = Usage(r["families"], r["amount"])
    return {c: (found.get(c, {}).get("held", Usage()), found.get(c, {}).get("pending", Usage())) for c in cells}


async def line(conn: asyncpg.Connection, wanted: Sequence[tuple[str, str, int]]) -> dict[tuple[str, str], list[Candidate]]:
    """The first `n` of each (programme, region, n) line of eligible candidates, in rank order.

    In line: a household whose enrolment is `candidate`, whose current decision under its programme's active
    rule set is `eligible`, and that no admission holds already.
    """
    wanted = [w for w in wanted if w[2] > 0]
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT c.programme, c.region, x.* FROM unnest($1::text[], $2::text[], $3::int[]) AS c(programme, region, n)"
        " CROSS JOIN LATERAL (" + _LINE + " LIMIT c.n) x",
        *map(list, zip(*wanted)))
    found: dict[tuple[str, str], list[Candidate]] = {}
    for r in rows:
        found.setdefault((r["programme"], r["region"]), []).append(_candidate(r))
    return found


# The line of one (c.programme, c.region), ranked: deprivation first, then earlier registration, then id.
_LINE = (
    "SELECT d.household_id, d.score, d.desil, d.yearly_amount, d.rule_version,"
    "   coalesce(h.registered_on, DATE '9999-12-31') AS registered_on"
    " FROM decisions d JOIN households h ON h.household_id = d.household_id AND h.programme = d.programme"
    " WHERE d.active_rule AND d.status = 'eligible' AND d.programme = c.programme"
    "   AND left(h.region_code, 4) = c.region AND h.enrolment_status = 'candidate'"
    "   AND NOT EXISTS (SELECT 1 FROM admissions a WHERE a.household_id = h.household_id AND a.settled_at IS NULL)"
    " ORDER BY d.score DESC, registered_on, d.household_id"
)


def _candidate(r: asyncpg.Record) -> Candidate:
    return Candidate(r["household_id"], float(r["score"]), r["registered_on"], int(r["yearly_amount"] or 0),
                     r["desil"], f"{r['programme']}.v{r['rule_version']}")


async def waiting(conn: asyncpg.Connection | asyncpg.Pool, programme: str, region: str, after_rank: int, limit: int,
                  scope_sql: str, scope_values: list) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the line of (programme, region): each family with its rank in the whole line (so a caller
    who sees part of it still sees the true ranks); and the rank the next page starts after."""
    rows = await conn.fetch(
        "WITH c AS (SELECT $1::text AS programme, $2::text AS region)"
        " SELECT w.* FROM (SELECT x.*, row_number() OVER (ORDER BY x.score DESC, x.registered_on, x.household_id)"
        "   AS rank FROM c CROSS JOIN LATERAL (" + _LINE + ") x) w"
        " JOIN household_scope s ON s.household_id = w.household_id"
        f" WHERE w.rank > $3 AND {scope_sql} ORDER BY w.rank LIMIT $4",
        programme, region, after_rank, limit + 1, *scope_values)
    items = [{"rank": r["rank"], "household_id": r["household_id"], "score": float(r["score"]), "desil": r["desil"],
              "yearly_amount": int(r["yearly_amount"] or 0)} for r in rows[:limit]]
    return items, items[-1]["rank"] if len(rows) > limit else None


async def waiting_count(conn: asyncpg.Connection | asyncpg.Pool, programme: str, region: str) -> int:
    return await conn.fetchval(
        "WITH c AS (SELECT $1::text AS programme, $2::text AS region)"
        " SELECT count(*) FROM c CROSS JOIN LATERAL (" + _LINE + ") x", programme, region)


async def allocate_cells(uow: UnitOfWork, cells: Iterable[Cell] | None = None, *, skip_locked: bool = False,
                         today: date | None = None) -> list[QuotaAdmitted]:
    """Admit the next in line into each quota of `cells` (None: every quota of the current year) that has room.

    The quotas' rows are locked (in key order, so two allocations never deadlock) until the transaction ends:
    allocations of one quota happen one after the other, in any replica. With `skip_locked` a quota another
    allocation holds is left to it. Only quotas of the current programme year admit.
    """
    year = (today or programme_today()).year
    conn = uow.conn
    await conn.execute(
        "UPDATE admissions a SET settled_at = now() FROM households h WHERE a.settled_at IS NULL"
        " AND h.household_id = a.household_id AND h.enrolment_status IN ('active', 'suspended', 'exited')")
    wanted = sorted(c for c in cells if c[1] == year) if cells is not None else None
    if wanted == []:
        return []
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM quotas WHERE year = $1"
        " AND ($2::text[] IS NULL OR (programme, region_code) IN (SELECT * FROM unnest($2::text[], $3::text[])))"
        " ORDER BY programme, year, region_code FOR UPDATE" + (" SKIP LOCKED" if skip_locked else ""),
        year, [c[0] for c in wanted] if wanted else None, [c[2] for c in wanted] if wanted else None)
    quotas = {(q.quota.programme, q.quota.region): q.quota for q in map(_quota, rows)}
    used = await usage(conn, list(quotas))
    held = {c: Usage(h.families + p.families, h.amount + p.amount) for c, (h, p) in used.items()}
    lines = await line(conn, [(*c, room(q, held[c])) for c, q in quotas.items()])
    admitted: list[tuple[Quota, Admission]] = []
    for c, quota in quotas.items():  # ranks count from 1, the head of the line of those not yet admitted
        admitted += [(quota, a) for a in allocate(quota, held[c], lines.get(c, []))]
    return await _announce(uow, admitted)


async def _announce(uow: UnitOfWork, admitted: Sequence[tuple[Quota, Admission]]) -> list[QuotaAdmitted]:
    if not admitted:
        return []
    cid = correlation_id.get()
    correlation = UUID(cid) if cid else uuid4()
    events = [QuotaAdmitted(source=SOURCE, subject=str(a.candidate.household_id), correlation_id=correlation,
                            data=QuotaAdmittedData(
                                household_id=a.candidate.household_id, programme=q.programme, year=q.year,
                                region=q.region, rank=a.rank, score=a.candidate.score, desil=a.candidate.desil,
                                rule_set=a.candidate.rule_set, yearly_amount=a.candidate.yearly_amount,
                                funders=[FunderShare(funder=f.funder, share=f.share, amount=amount)
                                         for f, amount in a.funders]))
              for q, a in admitted]
    await uow.conn.execute(
        "INSERT INTO admissions (event_id, household_id, programme, year, region_code, rank, score, yearly_amount)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::smallint[], $5::text[], $6::int[],"
        "   $7::real[], $8::bigint[])",
        [e.id for e in events], [e.data.household_id for e in events], [e.data.programme for e in events],
        [e.data.year for e in events], [e.data.region for e in events], [e.data.rank for e in events],
        [e.data.score for e in events], [e.data.yearly_amount for e in events])
    uow.emit_all(events)
    return events


async def allocation_loop(pool_of, outbox: Outbox, interval_s: float) -> None:
    """Seed the default quotas, then allocate every quota of the year every `interval_s` seconds."""
    async with pool_of().acquire() as conn:
        await seed_defaults(conn)
    while True:
        try:
            async with unit_of_work(pool_of(), outbox) as uow:
                admitted = await allocate_cells(uow, skip_locked=True)
            if admitted:
                log.info("admitted %d families into their quotas", len(admitted))
        except (OSError, asyncpg.PostgresError) as error:  # the next round tries again
            log.warning("quota allocation failed: %s", type(error).__name__)
        await asyncio.sleep(interval_s)
