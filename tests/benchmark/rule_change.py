"""Benchmark: reassessing a programme's households after a rule change.

    make bench-rule-change              # or: python -m tests.benchmark.rule_change [HOUSEHOLDS] [CHUNK]

On a fresh embedded PostgreSQL, a migrated eligibility schema is filled directly (COPY) with HOUSEHOLDS
(1,000,000 by default) households of Jamsosratu: their inputs as the input use cases store them (members
without NIK or name, welfare indicators, some unobserved), a third of them active. Then:

1. the shipped jamsosratu.v1 is activated: the job writes every household's first decision;
2. a jamsosratu.v2 (entry up to desil 3 instead of 4, electricity weighed 7 and walls 5) is loaded and
   activated: the job writes every household's new decision beside the old one and announces those that
   changed (eligibility.assessed into the outbox).

The tables are vacuumed and analyzed before each job (as a register settles between rule changes). Prints
households/s of each job, how many decisions changed, the longest chunk, and the CPU each household cost this
process and PostgreSQL (all its processes, from /proc): the figure a busy shared machine moves least; with the
load average. Then the seconds each phase of the job took, summed over its chunks (`Phases`: reading, deciding,
each statement of the writes; chunks overlap, two written while the next is read and decided, so the sum exceeds
the job's seconds): where to cut next. Figures, not assertions: the issue's target is at least 20,000 households/s
for 1,000,000 households.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import asyncpg

import ejsika_eligibility
from ejsika_eligibility import rule_book, rule_change
from ejsika_eligibility.domain.rules import DEFAULTS, INDICATORS
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.embedded import EmbeddedPostgres, free_port
from ejsika_runtime.outbox import Outbox

from . import scratch, tree_cpu_seconds

SCHEMA = "eligibility"
MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"
COPY_CHUNK = 20_000  # one COPY each: the generated packed inputs make a larger one outlast the command timeout
TODAY = date(2026, 11, 28)


def main(households: int, chunk: int) -> None:
    with scratch("ejsika-bench-rule-change-") as state, EmbeddedPostgres(state, port=free_port()) as postgres:
        postmaster = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
        asyncio.run(measure(postgres.dsn, households, chunk, postmaster))


class Phases:
    """Seconds spent in each phase of the job's chunks, by wrapping the functions and statements that make them."""

    STATEMENTS = {"CREATE TEMP": "staging table", "WITH stepped": "decide statement", "UPDATE reassessments":
                  "progress", "INSERT INTO processing": "record of processing", "WITH added AS (INSERT INTO outbox":
                  "events (outbox)", "ANALYZE": "analyze", "SELECT household_id FROM decisions": "sweep",
                  "COMMIT": "commit", "SELECT pg_notify": "notify"}

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def _add(self, name: str, started: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def install(self) -> None:
        phases = self

        def timed_sync(owner, name: str, label: str) -> None:
            real = getattr(owner, name)

            def timed(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return real(*args, **kwargs)
                finally:
                    phases._add(label, started)
            setattr(owner, name, timed)

        def timed_async(owner, name: str, label) -> None:
            real = getattr(owner, name)

            async def timed(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return await real(*args, **kwargs)
                finally:
                    phases._add(label(args, kwargs) if callable(label) else label, started)
            setattr(owner, name, timed)

        def statement(args, kwargs) -> str:
            text = str(args[1] if len(args) > 1 else kwargs.get("query", ""))
            return next((v for k, v in self.STATEMENTS.items() if text.lstrip().startswith(k)), "other statements")

        timed_async(rule_change, "read_chunk", "read (COPY and unpacking)")
        timed_sync(rule_change.columns, "decide", "decide (numpy)")
        timed_sync(rule_change, "staged", "staged rows (numpy)")
        timed_sync(rule_change.announcements, "told", "announcements (JSON)")
        timed_sync(rule_change, "history", "history rows")
        timed_async(asyncpg.Connection, "copy_to_table", "staged COPY")
        timed_async(asyncpg.Connection, "copy_records_to_table", lambda a, k: f"COPY {a[1]}")
        timed_async(asyncpg.Connection, "fetch", statement)
        timed_async(asyncpg.Connection, "execute", statement)

    def report(self) -> str:
        listed = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        self.seconds = {}
        return "; ".join(f"{name} {seconds:.1f} s" for name, seconds in listed)


PHASES = Phases()


def household_inputs(rng: random.Random, household_id: uuid.UUID) -> dict:
    welfare = {}
    for name, numeric in INDICATORS.items():
        if rng.random() < 0.03:
            continue  # not observed
        if name == "installed_power_va":
            welfare[name] = rng.choice([450, 900, 1300, 2200])
        elif numeric:
            welfare[name] = round(rng.uniform(3, 30), 1)
        else:
            welfare[name] = rng.random() < 0.55
    members = []
    for i in range(rng.randint(1, 7)):
        born = TODAY - timedelta(days=rng.randint(0, 80 * 365) if i else rng.randint(20 * 365, 70 * 365))
        members.append({"member_id": str(uuid.uuid4()), "sex": rng.choice("FM"), "birth_date": born.isoformat(),
                        "relation": "head" if i == 0 else "child", "in_school": 6 <= (TODAY - born).days // 365 <= 21
                        and rng.random() < 0.85, "pregnant": rng.random() < 0.03, "disability": rng.random() < 0.03})
    return {"household_id": str(household_id), "programme": "jamsosratu",
            "region_code": f"36{rng.randint(1, 4):02d}01{rng.randint(1, 9)}001", "members": members,
            "welfare": welfare, "escalation": None}


async def fill(pool: asyncpg.Pool, households: int) -> None:
    rng = random.Random(2026)
    async with pool.acquire() as conn:
        for start in range(0, households, COPY_CHUNK):
            ids = [uuid.uuid4() for _ in range(min(COPY_CHUNK, households - start))]
            rows = [household_inputs(rng, h) for h in ids]
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "households", columns=["household_id", "programme", "region_code", "inputs", "enrolment_status"],
                    records=[(h, "jamsosratu", r["region_code"], json.dumps(r),
                              "active" if i % 3 == 0 else "candidate") for i, (h, r) in enumerate(zip(ids, rows))])
    await settle(pool)


async def settle(pool: asyncpg.Pool) -> None:
    """Vacuum and analyze what was just written, as a register is between rule changes: otherwise the autovacuum
    of a table just filled runs during the next job, and is counted in its CPU."""
    for table in ("households", "decisions", "assessments", "outbox"):
        await pool.execute(f"VACUUM ANALYZE {table}", timeout=600)


async def timed_job(pool: asyncpg.Pool, outbox: Outbox, version: int, chunk: int, postmaster: int) -> None:
    job = await rule_change.activate(pool, "jamsosratu", version, "benchmark")
    rules = await rule_book.version(pool, "jamsosratu", version)
    await rule_change.claim(pool, job)
    started = last = time.perf_counter()
    cpu, database = time.process_time(), tree_cpu_seconds(postmaster)
    longest = 0.0

    def chunk_done() -> None:
        nonlocal last, longest
        longest, last = max(longest, time.perf_counter() - last), time.perf_counter()

    await rule_change.walk(pool, outbox, job, rules, rule_change.FIRST, chunk, TODAY, chunk_done)
    await rule_change.finish(pool, outbox, job, rules, TODAY)
    seconds = time.perf_counter() - started
    done, changed = await pool.fetchrow("SELECT done, changed FROM reassessments WHERE job_id = $1", job)
    print(f"{rules.id}: {done:,} households reassessed in {seconds:.1f} s ({done / seconds:,.0f} households/s), "
          f"{changed:,} decisions changed and announced; chunks of {chunk:,}, longest {longest * 1000:.0f} ms;"
          f" CPU a household: {(time.process_time() - cpu) * 1e6 / done:.0f} µs Python,"
          f" {(tree_cpu_seconds(postmaster) - database) * 1e6 / done:.0f} µs PostgreSQL;"
          f" load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    print(f"  phases (summed over chunks): {PHASES.report()}", flush=True)


async def measure(dsn: str, households: int, chunk: int, postmaster: int) -> None:
    pool = await create_pool(dsn, SCHEMA, size=4)
    try:
        await migrate(pool, SCHEMA, MIGRATIONS)
        started = time.perf_counter()
        await fill(pool, households)
        print(f"filled {households:,} households in {time.perf_counter() - started:.1f} s", flush=True)
        PHASES.install()
        outbox = Outbox(SCHEMA)
        # v1 shipped but not yet active: its activation writes every first decision
        await pool.execute("INSERT INTO rule_sets (programme, version, document, loaded_by) VALUES ($1, 1, $2, $3)",
                           "jamsosratu", (DEFAULTS / "jamsosratu.v1.json").read_text(), "benchmark")
        await timed_job(pool, outbox, 1, chunk, postmaster)
        document = json.loads((DEFAULTS / "jamsosratu.v1.json").read_text())
        document["indicators"]["no_electricity"]["weight"] = 7
        document["indicators"]["bamboo_or_unplastered_walls"]["weight"] = 5
        document.update(version=2, title="benchmark: stricter entry", entry={"max_desil": 3})
        await pool.execute("INSERT INTO rule_sets (programme, version, document, loaded_by) VALUES ($1, 2, $2, $3)",
                           "jamsosratu", json.dumps(document), "benchmark")
        await settle(pool)
        await timed_job(pool, outbox, 2, chunk, postmaster)
        kept = await pool.fetchval("SELECT count(*) FROM decisions WHERE rule_version = 1 AND NOT active_rule")
        events = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'ejsika.eligibility'")
        print(f"old decisions kept for comparison: {kept:,}; eligibility.assessed in the outbox: {events:,}", flush=True)
    finally:
        await pool.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, int(sys.argv[2]) if len(sys.argv) > 2 else 20_000)
