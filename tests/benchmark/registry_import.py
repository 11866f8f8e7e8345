"""Benchmark: a synthetic Banten register imported through the registry, and single-household writes.

    make bench-import                  # or: python -m tests.benchmark.registry_import --households 100000

Prints, for a tenth of the file and for the whole file (1,000,000 households by default), each in a
fresh registry: households/s from the first byte uploaded until the last event is published to Kafka,
the registry's peak memory (flat when it does not grow with the file), and the re-import's rate; and the
CPU a household cost the registry (reading, checking, building, writing; its import workers included),
PostgreSQL and Kafka, from /proc: the figure a shared machine's load moves least. Then the p50 and p95
latency of single-household registrations sent at 200 requests/s. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import threading
import time
from pathlib import Path

import asyncpg
import httpx

from ejsika_runtime.demo.launcher import demo_auth, local_keys, start_services, stop, wait_ready
from ejsika_runtime.demo.synthetic import Families
from ejsika_runtime.embedded import EmbeddedStack, free_port
from ejsika_runtime.kafka import create_topics
from ejsika_runtime.register_upload import upload
from ejsika_registry.synthetic import generate

RATE = 200  # single writes per second
SINGLE_WRITES = 2_000

from . import scratch, tree_cpu_seconds


def main(households: int) -> None:
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    with scratch("ejsika-bench-import-") as state:
        measure(state, households)


def write_file(path: Path, households: int) -> float:
    started = time.perf_counter()
    with path.open("w") as out:
        out.writelines(generate(households, seed=1))
    return time.perf_counter() - started


def _times(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakMemory(threading.Thread):
    """The highest peak RSS of any process under `root` (the registry, its import worker), sampled while running."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.peak, self.done = root, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            parents = {}
            for pid in filter(str.isdigit, os.listdir("/proc")):
                with contextlib.suppress(OSError, IndexError):
                    parents[int(pid)] = int(_times(pid)[1])
            tree, todo = [], [self.root]
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(child for child, parent in parents.items() if parent == pid)
            for pid in tree:
                with contextlib.suppress(OSError):
                    self.peak = max(self.peak, peak_rss_mb(pid))

    def __enter__(self) -> PeakMemory:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()


async def published(database_url: str, timeout: float = 3600) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT count(*) FROM registry.outbox") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def duplicates_checked(database_url: str, timeout: float = 1800) -> tuple[int, float]:
    """Wait until the duplicate sweep has checked every imported household; (households, seconds)."""
    conn = await asyncpg.connect(database_url)
    try:
        queued = await conn.fetchval("SELECT count(*) FROM registry.duplicate_checks")
        started = deadline = time.monotonic()
        deadline += timeout
        while await conn.fetchval("SELECT count(*) FROM registry.duplicate_checks") and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        return queued, time.monotonic() - started
    finally:
        await conn.close()


async def reset(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS registry CASCADE")
    finally:
        await conn.close()


async def single_writes(url: str, auth: httpx.Auth, families: Families) -> list[float]:
    """Registrations of one household each, sent at RATE a second whatever the answers' pace (open loop)."""
    bodies = families.registrations(SINGLE_WRITES)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, auth=auth, timeout=30,
                                 limits=httpx.Limits(max_connections=200)) as http:
        async def one(body: dict) -> None:
            started = time.perf_counter()
            try:
                answer = await http.post("/households", json=body)
            except httpx.TransportError:
                return  # counted as not answered 201
            if answer.status_code == 201:
                latencies.append(time.perf_counter() - started)

        tasks, start = [], time.perf_counter()
        for index, body in enumerate(bodies):
            await asyncio.sleep(max(0.0, start + index / RATE - time.perf_counter()))
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
    return sorted(latencies)


def measure(state: Path, households: int) -> None:
    files = {size: state / f"register-{size}.csv" for size in (max(1, households // 10), households)}
    for size, path in files.items():
        seconds = write_file(path, size)
        print(f"synthetic register of {size:,} households: {path.stat().st_size / 1e6:,.0f} MB "
              f"written in {seconds:,.1f} s ({size / seconds:,.0f} households/s)", flush=True)

    with EmbeddedStack(state / "stack", postgres_port=free_port(), kafka_port=free_port(),
                       kafka_controller_port=free_port(), keycloak_port=free_port(), progress=print) as stack:
        asyncio.run(create_topics(stack.kafka_bootstrap))
        postmaster = int((stack._postgres.data_dir / "postmaster.pid").read_text().split()[0])  # noqa: SLF001
        kafka = stack._kafka._proc.pid  # noqa: SLF001

        def cpus(registry: int) -> dict[str, float]:
            whole, ticks = tree_cpu_seconds(registry), os.sysconf("SC_CLK_TCK")
            own = sum(int(x) for x in _times(registry)[11:13]) / ticks  # its relay, HTTP; not the worker
            return {"registry process (relay, HTTP)": own, "import worker (read, check, build, write)": whole - own,
                    "PostgreSQL": tree_cpu_seconds(postmaster), "Kafka": tree_cpu_seconds(kafka)}
        database_url = stack.database_url
        env = {**os.environ, "EJSIKA_DATABASE_URL": database_url, "EJSIKA_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
               "EJSIKA_AUTH_ISSUER": stack.auth_issuer, **local_keys(), "EJSIKA_LOG_LEVEL": "WARNING",
               "EJSIKA_WRITE_RATE_PER_S": "1000", "EJSIKA_WRITE_BURST": "1000"}
        operator = demo_auth(stack, "ejsika-tests", "operator-jamsosratu")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        results = []
        for size, path in files.items():
            asyncio.run(reset(database_url))
            processes = start_services(env, {"registry": port})
            try:
                wait_ready({"registry": port}, processes, timeout=120)
                pid = processes["registry"].pid
                before = cpus(pid)
                started = time.perf_counter()
                with PeakMemory(pid) as peak:
                    report = upload(path, url, _token(operator), None)
                stored = time.perf_counter() - started
                at_stored = cpus(pid)
                asyncio.run(published(database_url))
                done = time.perf_counter() - started
                memory = max(peak.peak, peak_rss_mb(pid))
                read = max(1, report["households_read"])
                cost = {name: (spent - before[name]) / read * 1e6 for name, spent in cpus(pid).items()}
                cost_stored = {name: (spent - before[name]) / read * 1e6 for name, spent in at_stored.items()}
                started = time.perf_counter()
                again = upload(path, url, _token(operator), None)  # a fresh token: the import outlasts one
                reimport = time.perf_counter() - started
                checked, sweep = asyncio.run(duplicates_checked(database_url))
                results.append((size, report, stored, done, memory, again, reimport))
                print("CPU per household read, until the import answered: " + ", ".join(
                    f"{name} {micro:,.0f} µs" for name, micro in cost_stored.items())
                    + "; until the last event was published (the duplicate sweep may start meanwhile): " + ", ".join(
                    f"{name} {micro:,.0f} µs" for name, micro in cost.items())
                    + f"; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
                print(f"RESULT {size:,} households: {report['registered']:,} registered, "
                      f"{report['rejected_households']:,} rejected; stored {report['households_read'] / stored:,.0f}/s, "
                      f"published {report['registered'] / done:,.0f}/s, peak RSS {memory:,.0f} MB (registry or import worker), "
                      f"re-import {again['households_read'] / reimport:,.0f}/s; duplicate sweep afterwards "
                      f"{checked:,} households in {sweep:,.0f} s", flush=True)
            finally:
                stop(processes.values())

        processes = start_services(env, {"registry": port})
        try:
            wait_ready({"registry": port}, processes, timeout=120)
            latencies = asyncio.run(single_writes(url, demo_auth(stack, "ejsika-tests", "pendamping-demo"),
                                                  Families(seed=31)))
        finally:
            stop(processes.values())

    print()
    print(f"{'file':>12}{'registered':>12}{'rejected':>10}{'stored/s':>11}{'published/s':>13}"
          f"{'peak RSS':>11}{'re-import/s':>13}")
    for size, report, stored, done, memory, again, reimport in results:
        print(f"{size:>12,}{report['registered']:>12,}{report['rejected_households']:>10,}"
              f"{report['households_read'] / stored:>11,.0f}{report['registered'] / done:>13,.0f}"
              f"{memory:>9,.0f} MB{again['households_read'] / reimport:>13,.0f}")
    print("(published/s: registered households from the first byte uploaded until the last event is in Kafka)")
    if len(latencies) > 1:
        cuts = statistics.quantiles(latencies, n=100)
        print(f"single-household registrations at {RATE}/s: {len(latencies):,} of {SINGLE_WRITES:,} answered 201, "
              f"p50 {cuts[49] * 1000:.0f} ms, p95 {cuts[94] * 1000:.0f} ms")


def _token(auth) -> str:
    request = httpx.Request("GET", "http://token")
    return next(auth.auth_flow(request)).headers["authorization"].removeprefix("Bearer ")


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    arguments.add_argument("--households", type=int, default=1_000_000,
                           help="the whole file; a tenth of it is imported first (default 1,000,000)")
    main(arguments.parse_args().households)
