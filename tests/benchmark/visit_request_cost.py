"""What one POST /visits costs monitoring's process, in process (issue 10: the single-visit path).

    .venv/bin/python -m tests.benchmark.visit_request_cost [REQUESTS] [--profile]

On an embedded PostgreSQL in a fresh folder: a migrated monitoring schema, REQUESTS households (2,000 by
default) followed and active (each with its open due visit), then one visit per household posted one
request at a time through httpx's ASGITransport to monitoring's app as `app.py` builds it (its routes in
its order, its settings), never started (no Kafka: the relay's publishing and the consumers are not counted). Prints the CPU of this process per request and
PostgreSQL's, and with --profile the functions that cost most (cProfile, cumulative).
Figures, not assertions; the HTTP server (uvicorn) and the relay are outside this figure.
With EJSIKA_PG_STAT_STATEMENTS=1, also each statement's planning and running time (pg_stat_statements).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import os
import pstats
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx

import ejsika_monitoring
from ejsika_contracts import EnrolmentChanged, EnrolmentChangedData, HouseholdRegisteredDataV2, HouseholdRegisteredV2
from ejsika_monitoring.schedules import on_enrolment_changed, on_registered
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.embedded import EmbeddedPostgres, free_port
from ejsika_runtime.service import Service
from ejsika_runtime.testing import ISSUER, LocalIdentity
from ejsika_runtime.unit_of_work import unit_of_work

from tests.benchmark import scratch
from tests.benchmark.period_close import cpu_seconds

SCHEMA = "monitoring"
MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
PENDAMPING = "pendamping-1"
WIB = timezone(timedelta(hours=7))
# Set, the embedded PostgreSQL loads pg_stat_statements (ejsika_runtime.embedded.postgres)
STATEMENT_STATISTICS_ENV = "EJSIKA_PG_STAT_STATEMENTS"


def main(requests: int, profile: bool) -> None:
    with scratch("ejsika-visit-cost-") as state, EmbeddedPostgres(state, port=free_port(), progress=lambda *_: None) as pg:
        asyncio.run(measure(pg.dsn, requests, profile, pg.data_dir))


async def followed(service: Service, count: int) -> list[str]:
    """`count` households of the pendamping's caseload, registered a month ago and active."""
    ids = [uuid.uuid4() for _ in range(count)]
    registered = datetime.now(timezone.utc) - timedelta(days=30)
    registrations = [HouseholdRegisteredV2(
        source="registry", subject=str(h), correlation_id=uuid.uuid4(), time=registered,
        data=HouseholdRegisteredDataV2.model_validate({
            "household_id": h, "programme": "jscm", "region_code": "3672011001", "kk_number": "3672010101200001",
            "address": "x", "welfare": {}, "pendamping_id": PENDAMPING,
            "members": [{"member_id": uuid.uuid4(), "nik": "3672011203800001", "name": "A", "sex": "M",
                         "birth_date": "1980-03-12", "relation": "head"}]}))
        for h in ids]
    enrolments = [EnrolmentChanged(
        source="registry", subject=str(h), correlation_id=uuid.uuid4(), time=registered,
        data=EnrolmentChangedData(household_id=h, programme="jscm", region_code="3672011001", status="active",
                                  previous_status="candidate", effective_date=registered.date(), version=1))
        for h in ids]
    async with unit_of_work(service.pool, service.outbox) as uow:
        await on_registered(uow, registrations)
    async with unit_of_work(service.pool, service.outbox) as uow:
        await on_enrolment_changed(uow, enrolments)
    return [str(h) for h in ids]


def body(household_id: str) -> dict:
    member = str(uuid.uuid4())
    return {"visit_id": str(uuid.uuid4()), "household_id": household_id,
            "captured_at": (datetime.now(timezone.utc) - timedelta(hours=1)).astimezone(WIB).isoformat(),
            "location": {"latitude": -6.0172, "longitude": 106.0539, "accuracy_m": 12},
            "observations": {"school": [{"member_id": member, "enrolled": True, "days_present": 18, "school_days": 20}],
                             "toddlers": [{"member_id": str(uuid.uuid4()), "weighed": True,
                                           "immunised_on_schedule": True}]},
            "notes": "baik"}


async def measure(dsn: str, requests: int, profile: bool, data_dir: Path) -> None:
    statements = os.environ.get(STATEMENT_STATISTICS_ENV, "") not in ("", "0")
    if statements:  # where PostgreSQL's time goes, statement by statement, planning included
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public")
        await conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
        await conn.execute("SELECT pg_reload_conf()")
        await conn.close()
    pool = await create_pool(dsn, SCHEMA, size=4)
    try:
        await migrate(pool, SCHEMA, MIGRATIONS)
        os.environ.update(EJSIKA_AUTH_ISSUER=ISSUER, EJSIKA_WRITE_RATE_PER_S="1000000", EJSIKA_WRITE_BURST="1000000")
        from ejsika_monitoring.app import app, service

        idp = LocalIdentity()
        idp.install(service.access)
        service._pool = pool  # the app is never started: its routes run on this pool
        households = await followed(service, requests + 200)
        headers = idp.headers("pendamping", sub=PENDAMPING)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://monitoring",
                                     headers=headers) as http:
            for h in households[:200]:  # warm up: the first requests build caches
                assert (await http.post("/visits", json=body(h))).status_code == 201
            bodies = [body(h) for h in households[200:]]
            gc.collect()
            profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not the wall clock
            if statements:
                await pool.execute("SELECT public.pg_stat_statements_reset()")
            cpu, db, wall = time.process_time(), cpu_seconds(data_dir), time.perf_counter()
            if profiler:
                profiler.enable()
            for b in bodies:
                answer = await http.post("/visits", json=b)
                if answer.status_code != 201:
                    raise SystemExit(f"unexpected {answer.status_code}: {answer.text}")
            if profiler:
                profiler.disable()
            cpu, db, wall = time.process_time() - cpu, cpu_seconds(data_dir) - db, time.perf_counter() - wall
        print(f"{requests:,} POST /visits one at a time in {wall:.1f} s: this process {cpu / requests * 1000:.2f} ms CPU"
              f" a visit (client's httpx included), PostgreSQL {db / requests * 1000:.2f} ms a visit"
              f"{' (under cProfile)' if profile else ''}")
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
        if statements:
            for r in await pool.fetch(
                    "SELECT calls, total_plan_time / calls AS plan, total_exec_time / calls AS exec, query"
                    " FROM public.pg_stat_statements WHERE calls >= $1 / 2 ORDER BY total_plan_time + total_exec_time DESC"
                    " LIMIT 10", requests):
                print(f"{r['calls']:>7,} x plan {r['plan']:.3f} ms + run {r['exec']:.3f} ms: "
                      + " ".join(r["query"].split())[:110])
        if profiler:
            out = os.environ.get("PROFILE_OUT", os.path.join(tempfile.gettempdir(), "visit_request.prof"))
            profiler.dump_stats(out)  # for pstats or snakeviz
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    finally:
        await pool.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 2_000, "--profile" in sys.argv)
