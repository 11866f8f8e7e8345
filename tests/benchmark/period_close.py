"""Benchmark: closing a period of the verification of commitments (verifikasi komitmen) over many households.

    make bench-period-close             # or: python -m tests.benchmark.period_close [HOUSEHOLDS] [BATCH] [PARALLEL]

On an embedded PostgreSQL in a fresh folder: a monitoring schema, migrated, then HOUSEHOLDS active
households (1,000,000 by default) with their members (two adults, a school child, a toddler in one
household of three, a pregnant member in one of ten) and one visit each in the period, all written
with COPY. Then the period is closed as the service closes it, in bounded batches (5,000 households
a transaction by default) of the household-id shards, two shards at a time, each batch storing its results
and writing its `compliance.verified` events to the outbox in one statement.
Prints the time to close and the households per second. Figures, not assertions (issue 8: under 60 s).

Live intake (issue 8: "without stopping live visit intake"): while the period closes, a probe records
PROBE_RATE visits a second through monitoring's own intake (`recorded_visits.take`, the path of POST /visits)
on a pool of its own, each to a household drawn from the whole population (so also to households whose
batch is being closed), captured in the period being closed, with the school child present every day.
Prints how many were recorded during the close, the p50/p95/max latency of each (from the moment it was
due to its commit) and any that failed; then how the results account for them: those the close itself
counted, the corrections the late-visit recheck published for the others, and any household whose stored
result still differs from a verification over all its visits (expected: none).
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
from ejsika_contracts import Observations
from ejsika_monitoring import compliance
from ejsika_monitoring.domain.compliance import Period
from ejsika_monitoring.domain.visits import VisitPolicy
from ejsika_monitoring.recorded_visits import Visit, take
from ejsika_runtime.access import Caller, Policy
from ejsika_runtime.auth import Principal, Role
from ejsika_runtime.unit_of_work import unit_of_work
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.embedded import EmbeddedPostgres, free_port
from ejsika_runtime.outbox import Outbox

SCHEMA = "monitoring"
MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
PERIOD = Period(date(2026, 3, 1), date(2026, 3, 31))
CHUNK = 100_000  # rows per COPY
PROBE_RATE = 40  # live visits a second while a check runs
PROBE_HOUSEHOLDS = 2_000

from . import scratch


def main(households: int, batch: int, parallel: int) -> None:
    with scratch("ejsika-bench-period-close-") as state, EmbeddedPostgres(state, port=free_port()) as postgres:
        asyncio.run(measure(postgres.dsn, households, batch, postgres.data_dir, parallel))


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


class LiveIntake:
    """Visits recorded at a steady rate while a check runs, each through monitoring's own intake
    (`recorded_visits.take`, in a transaction of its own as POST /visits takes it), on its own pool, by a
    supervisor of Banten on behalf of a pendamping. Open loop: a visit starts when it is due, whether or not
    the ones before it are done, and its latency runs from that moment to its commit."""

    def __init__(self, pool: asyncpg.Pool, households: list[uuid.UUID], captured_at: datetime,
                 observations: dict[uuid.UUID, Observations] | None = None, rate: float = PROBE_RATE) -> None:
        self.pool, self.households, self.rate = pool, households, rate
        self.captured_at, self.observations = captured_at, observations or {}
        self.caller = Caller(Principal("probe-supervisor", frozenset({Role.SUPERVISOR}), area="36"),
                             Policy(frozenset({Role.SUPERVISOR}), "benchmark probe of live intake", frozenset()),
                             "POST /visits")
        self.latencies: list[float] = []
        self.results: dict[str, int] = {}
        self.failed: list[str] = []
        self.visited: list[uuid.UUID] = []
        self._stop = asyncio.Event()

    async def _one(self, household_id: uuid.UUID, due: float) -> None:
        visit = Visit(uuid.uuid4(), household_id, "pendamping-1", self.captured_at, None,
                      self.observations.get(household_id, Observations()), None)
        try:
            async with unit_of_work(self.pool, Outbox(SCHEMA)) as uow:
                (outcome,) = await take(uow, [visit], self.caller, datetime.now(timezone.utc), VisitPolicy())
        except Exception as error:  # counted and shown by kind: the probe's point is that none fail
            self.failed.append(type(error).__name__)
            return
        self.latencies.append(time.perf_counter() - due)
        self.results[outcome.result] = self.results.get(outcome.result, 0) + 1
        if outcome.result == "recorded":
            self.visited.append(household_id)

    async def run(self) -> None:
        """Record visits until `stop`, then wait for those in flight."""
        started, tasks, i = time.perf_counter(), set(), 0
        while not self._stop.is_set():
            due = started + i / self.rate
            if (wait := due - time.perf_counter()) > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), wait)
                    break
                except TimeoutError:
                    pass
            task = asyncio.create_task(self._one(self.households[i % len(self.households)], due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.gather(*tasks)

    def stop(self) -> None:
        self._stop.set()

    def report(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return f"live intake: no visit recorded; failed {len(self.failed)}"
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        failed = ", ".join(f"{k} {self.failed.count(k)}" for k in sorted(set(self.failed))) or "none"
        return (f"live intake during the run: {len(lat):,} visits at {self.rate}/s ("
                + ", ".join(f"{k} {v:,}" for k, v in sorted(self.results.items()))
                + f"), latency p50 {p(0.5):.0f} ms, p95 {p(0.95):.0f} ms, max {lat[-1] * 1000:.0f} ms; failed: {failed}")


async def probe_households(pool: asyncpg.Pool, count: int) -> dict[uuid.UUID, Observations]:
    """`count` households drawn from the whole population, each with its school child seen present every
    day of the period (which makes the household compliant unless another commitment fails)."""
    rows = await pool.fetch(
        "SELECT DISTINCT ON (m.household_id) m.household_id, m.member_id FROM members m"
        " WHERE m.household_id IN (SELECT household_id FROM households TABLESAMPLE BERNOULLI ($1::float8)"
        "   LIMIT $2) AND m.birth_date >= '2010-01-01' AND m.birth_date < '2019-01-01'",
        min(100.0, 100.0 * count * 1.5 / max(1, await pool.fetchval("SELECT count(*) FROM households"))), count)
    present = lambda child: Observations.model_validate(  # noqa: E731
        {"school": [{"member_id": child, "enrolled": True, "days_present": 20, "school_days": 20}]})
    households = {r["household_id"]: present(r["member_id"]) for r in rows}
    order = list(households)
    random.Random(2).shuffle(order)
    return {h: households[h] for h in order}


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
            # who may act on each household (a supervisor of Banten, the live-intake probe's caller)
            await conn.copy_records_to_table("household_scope", records=[(r[0], r[1], r[2], "pendamping-1") for r in h],
                                             schema_name=SCHEMA, columns=[
                "household_id", "programme", "region_code", "pendamping_id"])
            await conn.copy_records_to_table("enrolments", records=e, schema_name=SCHEMA, columns=[
                "household_id", "programme", "status", "effective_date", "version", "changed_at"])
            await conn.copy_records_to_table("members", records=m, schema_name=SCHEMA, columns=[
                "member_id", "household_id", "birth_date", "sex", "pregnant"])
            await conn.copy_records_to_table("visit_records", records=v, schema_name=SCHEMA, columns=[
                "visit_id", "household_id", "pendamping_id", "captured_at", "received_at", "observations"])
        await conn.execute(f"ANALYZE {SCHEMA}.households, {SCHEMA}.enrolments, {SCHEMA}.members,"
                           f" {SCHEMA}.visit_records")
    return time.perf_counter() - started


async def measure(database_url: str, households: int, batch: int, data_dir: Path,
                  parallel: int = compliance.PARALLEL_SHARDS) -> None:
    pool = await create_pool(database_url, SCHEMA, size=max(4, parallel + 1))
    try:
        await migrate(pool, SCHEMA, MIGRATIONS)
        loaded = await load(pool, households)
        print(f"loaded {households:,} households with members and visits (COPY) in {loaded:.1f} s", flush=True)
        observed = await probe_households(pool, PROBE_HOUSEHOLDS)
        probe_pool = await create_pool(database_url, SCHEMA, size=4)
        probe = LiveIntake(probe_pool, list(observed), datetime(2026, 3, 20, 3, tzinfo=timezone.utc), observed)
        started, cpu, database_cpu = time.perf_counter(), time.process_time(), cpu_seconds(data_dir)
        probing = asyncio.create_task(probe.run())
        try:
            closed = await compliance.close_period(pool, Outbox(SCHEMA), "jscm", PERIOD, batch=batch, parallel=parallel)
            elapsed = time.perf_counter() - started
        finally:
            probe.stop()
            await probing
            await probe_pool.close()
        cpu, database_cpu = time.process_time() - cpu, cpu_seconds(data_dir) - database_cpu
        results = await pool.fetch("SELECT result, count(*) AS n FROM compliance_results GROUP BY result ORDER BY 1")
        events = await pool.fetchval("SELECT count(*) FROM outbox")
        print(f"period {PERIOD.start}..{PERIOD.end} closed over {closed:,} households in {elapsed:.1f} s "
              f"({closed / elapsed:,.0f} households/s, batches of {batch:,}, {parallel} shards at a time;"
              " target under 60 s for 1,000,000)")
        print("results: " + ", ".join(f"{r['result']} {r['n']:,}" for r in results) + f"; {events:,} events in the outbox")
        print(f"CPU used by the close: PostgreSQL {database_cpu:.1f} s, this process {cpu:.1f} s"
              f" (the live-intake probe's included)")
        print(probe.report())
        await account_for(pool, probe)
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    finally:
        await pool.close()


async def account_for(pool: asyncpg.Pool, probe: LiveIntake) -> None:
    """How the close's results account for the probe's visits: counted by the close, or corrected after."""
    visited = list(set(probe.visited))
    count_visits = ("SELECT count(*) FROM compliance_results r WHERE r.household_id = ANY($1::uuid[])"
                    " AND r.period_start = $2 AND r.revision = $3")
    corrected = 0
    while (found := await compliance.recheck_late(pool, Outbox(SCHEMA), lag=timedelta(0))) is not None:
        corrected += found
    first = await pool.fetchval(count_visits, visited, PERIOD.start, 1)
    c = compliance.commitments_for("jscm")
    async with pool.acquire() as conn:
        now = await compliance.verify(conn, visited, PERIOD, c)
        stored = {r["household_id"]: (r["result"], json.loads(r["members"])) for r in await conn.fetch(
            "SELECT household_id, result, members::text AS members FROM compliance_results"
            " WHERE household_id = ANY($1::uuid[]) AND period_start = $2", visited, PERIOD.start)}
    outcome = lambda found: found and compliance._outcome(*found)  # noqa: E731
    differ = sum(1 for h in visited if outcome(now.get(h)) != outcome(stored.get(h)))
    print(f"the probe's {len(visited):,} households: {first:,} kept the close's own result (it counted their visit,"
          f" or the visit changed nothing), {corrected:,} corrections published by the late-visit recheck for visits"
          f" committed after their batch was verified; stored results differing from a verification over all"
          f" their visits: {differ}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000,
         int(sys.argv[2]) if len(sys.argv) > 2 else compliance.BATCH_HOUSEHOLDS,
         int(sys.argv[3]) if len(sys.argv) > 3 else compliance.PARALLEL_SHARDS)
