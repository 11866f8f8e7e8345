"""Benchmark: the overdue check over a million active households.

    make bench-overdue                  # or: python -m tests.benchmark.overdue_check [HOUSEHOLDS] [PAST_DUE_SHARE]

On a fresh embedded PostgreSQL, a migrated monitoring schema is filled directly (COPY) with HOUSEHOLDS
active households (1,000,000 by default), each with its open due visit; PAST_DUE_SHARE of them (0.3 by
default) are past their due date. Then the overdue check runs as the service runs it (bounded batches of
5,000 households, two at a time, one short transaction each, one visit.overdue per household in the
outbox), and runs again (nothing left to raise). Prints the time of each run, the rate, the longest
transaction and the CPU used.
Figures, not assertions: the issue's target is under 60 s for 1,000,000 households.

Live intake (issue 8: "without stopping live visit intake"): during the first run, a probe records visits
at a steady rate through monitoring's own intake (`period_close.LiveIntake`: `recorded_visits.take`, the
path of POST /visits, on a pool of its own) to households drawn from the whole population, past due ones
among them (so also to households in a batch being marked). Prints the visits recorded during the run, the
p50/p95/max latency of each and any that failed, and how many of the visited households are still overdue
afterwards (expected: none; a visit to a household a batch has just marked ends its overdue).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg

import ejsika_monitoring
from ejsika_monitoring import schedules
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.embedded import EmbeddedPostgres, free_port
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.programme_time import programme_today

SCHEMA = "monitoring"
MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
BATCH = 5_000
PARALLEL = 2  # batches side by side, as the service runs the check
CHUNK = 100_000  # rows per COPY

from . import scratch
from .period_close import PROBE_HOUSEHOLDS, LiveIntake, cpu_seconds


def main(households: int, past_due: float) -> None:
    with scratch("ejsika-bench-overdue-") as state, EmbeddedPostgres(state, port=free_port()) as postgres:
        asyncio.run(measure(postgres.dsn, households, past_due, postgres.data_dir))


async def fill(pool: asyncpg.Pool, households: int, past_due: float) -> tuple[int, list[uuid.UUID]]:
    """COPY `households` active households with an open due visit; answer how many are past due, and
    PROBE_HOUSEHOLDS of them spread over the whole population for the live-intake probe."""
    today = programme_today()
    late = int(households * past_due)
    step, sample = max(1, households // PROBE_HOUSEHOLDS), []
    async with pool.acquire() as conn:
        for start in range(0, households, CHUNK):
            ids = [uuid.uuid4() for _ in range(min(CHUNK, households - start))]
            sample.extend(ids[::step])
            # past due by 1-60 days for the first `late`, due within the next 30 days for the others
            dues = [today - timedelta(days=1 + (start + i) % 60) if start + i < late
                    else today + timedelta(days=(start + i) % 30) for i in range(len(ids))]
            regions = [f"36{(start + i) % 8 + 1:02d}01{(start + i) % 9 + 1}001" for i in range(len(ids))]
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "households", columns=["household_id", "programme", "region_code", "registered_at", "status",
                                           "interval_days", "next_due"],
                    records=[(h, "jamsosratu", r, _registered(d), "active", 30, d) for h, r, d in zip(ids, regions, dues)])
                await conn.copy_records_to_table(
                    "household_scope", columns=["household_id", "programme", "region_code", "pendamping_id"],
                    records=[(h, "jamsosratu", r, f"pendamping-{i % 2_000}") for i, (h, r) in enumerate(zip(ids, regions))])
                await conn.copy_records_to_table(
                    "visits", columns=["visit_id", "household_id", "kind", "opens_on", "due_date"],
                    records=[(uuid.uuid4(), h, "monthly_session", d - timedelta(days=29), d) for h, d in zip(ids, dues)])
        await conn.execute("ANALYZE households; ANALYZE household_scope; ANALYZE visits")
    random.Random(3).shuffle(sample)
    return late, sample


def _registered(due: date) -> datetime:
    return datetime.combine(due - timedelta(days=45), datetime.min.time(), tzinfo=timezone.utc)


async def timed_run(pool: asyncpg.Pool, outbox: Outbox) -> tuple[int, float, float]:
    """One run of the check, batch by batch and PARALLEL batches side by side as `mark_overdue` does it:
    (marked, seconds, longest batch s)."""
    longest, started = 0.0, time.perf_counter()

    async def work() -> int:
        nonlocal longest
        marked = 0
        while True:
            began = time.perf_counter()
            found = await schedules.mark_overdue_batch(pool, outbox, BATCH)
            longest = max(longest, time.perf_counter() - began)
            marked += found
            if found < BATCH:
                return marked

    marked = sum(await asyncio.gather(*(work() for _ in range(PARALLEL))))
    return marked, time.perf_counter() - started, longest


async def measure(dsn: str, households: int, past_due: float, data_dir: Path) -> None:
    pool = await create_pool(dsn, SCHEMA, size=4)
    try:
        await migrate(pool, SCHEMA, MIGRATIONS)
        started = time.perf_counter()
        late, sample = await fill(pool, households, past_due)
        print(f"filled {households:,} active households ({late:,} past due) in {time.perf_counter() - started:.1f} s",
              flush=True)
        outbox = Outbox(SCHEMA)
        probe_pool = await create_pool(dsn, SCHEMA, size=4)
        probe = LiveIntake(probe_pool, sample, datetime.now(timezone.utc) - timedelta(minutes=1))
        cpu, database_cpu = time.process_time(), cpu_seconds(data_dir)
        probing = asyncio.create_task(probe.run())
        try:
            marked, seconds, longest = await timed_run(pool, outbox)
        finally:
            probe.stop()
            await probing
            await probe_pool.close()
        cpu, database_cpu = time.process_time() - cpu, cpu_seconds(data_dir) - database_cpu
        print(f"overdue check: {marked:,} households marked overdue in {seconds:.1f} s "
              f"({households / seconds:,.0f} households checked/s, {marked / seconds:,.0f} marked/s), "
              f"batches of {BATCH:,}, {PARALLEL} at a time, longest transaction {longest * 1000:.0f} ms", flush=True)
        print(f"CPU used by the check: PostgreSQL {database_cpu:.1f} s, this process {cpu:.1f} s"
              " (the live-intake probe's included)", flush=True)
        print(probe.report(), flush=True)
        visited = list(set(probe.visited))
        still = await pool.fetchval("SELECT count(*) FROM households WHERE household_id = ANY($1::uuid[])"
                                    " AND overdue_since IS NOT NULL", visited)
        ended = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'ejsika.visit'"
                                    " AND convert_from(value, 'UTF8')::json->'data'->>'overdue' = 'false'")
        print(f"the probe's {len(visited):,} visited households: {still:,} still overdue after their visit"
              f" (expected 0); {ended:,} visit.overdue (overdue: false) for the ones a batch had marked first",
              flush=True)
        events = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'ejsika.visit'"
                                     " AND convert_from(value, 'UTF8')::json->>'type' = 'visit.overdue'"
                                     " AND convert_from(value, 'UTF8')::json->'data'->>'overdue' = 'true'")
        print(f"visit.overdue (overdue: true) events in the outbox: {events:,} (one per household marked)", flush=True)
        started = time.perf_counter()
        again = await schedules.mark_overdue(pool, outbox, BATCH)
        print(f"second run: {again:,} marked in {time.perf_counter() - started:.2f} s (raised once)", flush=True)
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    finally:
        await pool.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, float(sys.argv[2]) if len(sys.argv) > 2 else 0.3)
