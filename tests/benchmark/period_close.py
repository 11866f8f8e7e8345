"""Benchmark: closing a period of the verification of commitments (verifikasi komitmen) over many households.

    make bench-period-close             # or: python -m tests.benchmark.period_close [HOUSEHOLDS] [BATCH]

On an embedded PostgreSQL in a fresh folder: a monitoring schema, migrated, then HOUSEHOLDS active
households (1,000,000 by default) with their members (two adults, a school child, a toddler in one
household of three, a pregnant member in one of ten) and one visit each in the period, all written
with COPY. Then the period is closed as the service closes it, in bounded batches (5,000 households
a transaction by default) of the household-id shards, two shards at a time, each batch storing its results
and writing its `compliance.verified` events to the outbox in one statement.
Prints the time to close and the households per second. Figures, not assertions (issue 8: under 60 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg

import ejsika_monitoring
from ejsika_monitoring import compliance
from ejsika_monitoring.domain.compliance import Period
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.embedded import EmbeddedPostgres, free_port
from ejsika_runtime.outbox import Outbox

SCHEMA = "monitoring"
MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
PERIOD = Period(date(2026, 3, 1), date(2026, 3, 31))
CHUNK = 100_000  # rows per COPY

from . import scratch


def main(households: int, batch: int) -> None:
    with scratch("ejsika-bench-period-close-") as state, EmbeddedPostgres(state, port=free_port()) as postgres:
        asyncio.run(measure(postgres.dsn, households, batch, postgres.data_dir))


def cpu_seconds(data_dir: Path) -> float:
    """CPU time used so far by the PostgreSQL of `data_dir` (its postmaster and live children): on a shared
    machine, the figure the wall clock hides."""
    postmaster = (data_dir / "postmaster.pid").read_text().split()[0]
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
        except OSError:
            continue
        fields = rest.rsplit(")", 1)[1].split()
        if pid == postmaster or fields[1] == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def generate(start: int, count: int, rng: random.Random) -> tuple[list, list, list, list]:
    households, enrolments, members, visits = [], [], [], []
    registered = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for i in range(start, start + count):
        h = uuid.UUID(int=rng.getrandbits(128))
        households.append((h, "jscm", "3672011001", registered, "active"))
        enrolments.append((h, "jscm", "active", date(2025, 1, 1), 1, registered))
        pregnant = i % 10 == 0
        child = uuid.uuid4()
        people = [(uuid.uuid4(), h, date(1985, 1, 1), "M", False), (uuid.uuid4(), h, date(1988, 1, 1), "F", pregnant),
                  (child, h, date(2014, 1, 1) + timedelta(days=i % 2000), "F", False)]
        observations = {"school": [{"member_id": str(child), "enrolled": True, "days_present": 15 + i % 6,
                                    "school_days": 20}]}
        if i % 3 == 0:
            toddler = uuid.uuid4()
            people.append((toddler, h, date(2024, 6, 1), "M", False))
            observations["toddlers"] = [{"member_id": str(toddler), "weighed": True,
                                         "immunised_on_schedule": i % 7 != 0}]
        if pregnant:
            observations["antenatal"] = [{"member_id": str(people[1][0]), "checked": i % 20 == 0}]
        members.extend(people)
        captured = datetime(2026, 3, 1 + i % 28, 3, tzinfo=timezone.utc)
        visits.append((uuid.uuid4(), h, "pendamping-1", captured, captured + timedelta(hours=5),
                       json.dumps(observations)))
    return households, enrolments, members, visits


async def load(pool: asyncpg.Pool, households: int) -> float:
    started = time.perf_counter()
    rng = random.Random(1)
    async with pool.acquire() as conn:
        for start in range(0, households, CHUNK):
            h, e, m, v = generate(start, min(CHUNK, households - start), rng)
            await conn.copy_records_to_table("households", records=h, schema_name=SCHEMA, columns=[
                "household_id", "programme", "region_code", "registered_at", "status"])
            await conn.copy_records_to_table("enrolments", records=e, schema_name=SCHEMA, columns=[
                "household_id", "programme", "status", "effective_date", "version", "changed_at"])
            await conn.copy_records_to_table("members", records=m, schema_name=SCHEMA, columns=[
                "member_id", "household_id", "birth_date", "sex", "pregnant"])
            await conn.copy_records_to_table("visit_records", records=v, schema_name=SCHEMA, columns=[
                "visit_id", "household_id", "pendamping_id", "captured_at", "received_at", "observations"])
        await conn.execute(f"ANALYZE {SCHEMA}.households, {SCHEMA}.enrolments, {SCHEMA}.members,"
                           f" {SCHEMA}.visit_records")
    return time.perf_counter() - started


async def measure(database_url: str, households: int, batch: int, data_dir: Path) -> None:
    pool = await create_pool(database_url, SCHEMA, size=4)
    try:
        await migrate(pool, SCHEMA, MIGRATIONS)
        loaded = await load(pool, households)
        print(f"loaded {households:,} households with members and visits (COPY) in {loaded:.1f} s", flush=True)
        started, cpu, database_cpu = time.perf_counter(), time.process_time(), cpu_seconds(data_dir)
        closed = await compliance.close_period(pool, Outbox(SCHEMA), "jscm", PERIOD, batch=batch)
        elapsed = time.perf_counter() - started
        cpu, database_cpu = time.process_time() - cpu, cpu_seconds(data_dir) - database_cpu
        results = await pool.fetch("SELECT result, count(*) AS n FROM compliance_results GROUP BY result ORDER BY 1")
        events = await pool.fetchval("SELECT count(*) FROM outbox")
        print(f"period {PERIOD.start}..{PERIOD.end} closed over {closed:,} households in {elapsed:.1f} s "
              f"({closed / elapsed:,.0f} households/s, batches of {batch:,}; target under 60 s for 1,000,000)")
        print("results: " + ", ".join(f"{r['result']} {r['n']:,}" for r in results) + f"; {events:,} events in the outbox")
        print(f"CPU used by the close: PostgreSQL {database_cpu:.1f} s, this process {cpu:.1f} s")
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    finally:
        await pool.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000,
         int(sys.argv[2]) if len(sys.argv) > 2 else compliance.BATCH_HOUSEHOLDS)
