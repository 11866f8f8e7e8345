"""Benchmark: does eligibility's live assessment keep up with the registry's import?

    make bench-live-assessment         # or: python -m tests.benchmark.live_assessment [HOUSEHOLDS] [EVERY_S]

On the embedded stack, registry and eligibility run as the real services. A synthetic Banten register of
HOUSEHOLDS households (100,000 by default) is imported through the registry (POST /imports, as an operator of
Jamsosratu), while every EVERY_S seconds (5) the benchmark samples: the households the registry has stored, the
events of the household topic published (its end offsets) and those eligibility has committed (its consumer
group's offsets), the lag between the two, and the households eligibility has assessed (a decision in force).
Sampling goes on until eligibility has read the whole topic.

Prints the samples, then the import rate (households stored a second, and published), the assessment rate
(households assessed a second, over the time from the first to the last), the lag over the import (its growth:
the lag's slope in events a second over the second half of the import, ~0 when it is bounded), how long
eligibility took to drain what was left once the registry was done, the CPU eligibility spent a household (the
figure a busy machine moves least), and the load average. Figures, not assertions: the issue's target is that
live assessment keeps up with the import without growing lag.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ejsika_contracts import HOUSEHOLD
from ejsika_runtime.demo.launcher import demo_auth, local_keys, start_services, stop, wait_ready
from ejsika_runtime.embedded import EmbeddedStack, free_port
from ejsika_runtime.kafka import create_topics
from ejsika_runtime.register_upload import upload

from . import scratch
from .registry_import import write_file
from .visit_to_webhook import cpu_seconds

SERVICES = ("registry", "eligibility")
GROUP = "eligibility"  # the service's consumer group is its name
DRAIN_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the upload began
    stored: int  # households in the registry
    published: int  # events in the household topic
    committed: int  # of those, read and committed by eligibility
    assessed: int  # households with a decision in force
    eligibility_cpu: float

    @property
    def lag(self) -> int:
        return self.published - self.committed


def main(households: int, every: float) -> None:
    with scratch("ejsika-bench-live-assessment-") as state:
        path = state / "register.csv"
        seconds = write_file(path, households)
        print(f"synthetic register of {households:,} households written in {seconds:.1f} s", flush=True)
        with EmbeddedStack(state / "stack", postgres_port=free_port(), kafka_port=free_port(),
                           kafka_controller_port=free_port(), keycloak_port=free_port(), progress=print) as stack:
            asyncio.run(create_topics(stack.kafka_bootstrap))
            env = {**os.environ, "EJSIKA_DATABASE_URL": stack.database_url,
                   "EJSIKA_KAFKA_BOOTSTRAP": stack.kafka_bootstrap, "EJSIKA_AUTH_ISSUER": stack.auth_issuer,
                   **local_keys(), "EJSIKA_LOG_LEVEL": "WARNING"}
            ports = {name: free_port() for name in SERVICES}
            operator = demo_auth(stack, "ejsika-tests", "operator-jamsosratu")
            processes = start_services(env, ports)
            try:
                wait_ready(ports, processes, timeout=180)
                samples, uploaded = asyncio.run(follow(stack, path, ports, operator, processes["eligibility"].pid, every))
            finally:
                stop(processes.values())
    report(households, samples, uploaded)


async def follow(stack: EmbeddedStack, path: Path, ports: dict[str, int], operator, eligibility_pid: int,
                 every: float) -> tuple[list[Sample], dict]:
    """Upload the register (in a thread) and sample until eligibility has read every event of the topic."""
    conn = await asyncpg.connect(stack.database_url)
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await consumer.start()
    await admin.start()
    uploaded: dict = {}
    try:
        partitions = [TopicPartition(HOUSEHOLD.name, p) for p in range(HOUSEHOLD.partitions)]

        def run_upload() -> None:
            started = time.perf_counter()
            uploaded["report"] = upload(path, f"http://127.0.0.1:{ports['registry']}", _token(operator), None)
            uploaded["seconds"] = time.perf_counter() - started

        cpu_before = cpu_seconds(eligibility_pid)
        started = time.perf_counter()
        thread = threading.Thread(target=run_upload, daemon=True)
        thread.start()
        samples: list[Sample] = []
        while True:
            await asyncio.sleep(every)
            sample = await take(conn, consumer, admin, partitions, time.perf_counter() - started,
                                cpu_seconds(eligibility_pid) - cpu_before)
            samples.append(sample)
            print(f"{sample.at:7.1f} s  stored {sample.stored:>9,}  published {sample.published:>9,}  "
                  f"committed {sample.committed:>9,}  lag {sample.lag:>8,}  assessed {sample.assessed:>9,}  "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            pending = await conn.fetchval("SELECT count(*) FROM registry.outbox")
            if not thread.is_alive() and not pending and sample.lag == 0 and sample.published:
                break
            if sample.at > DRAIN_TIMEOUT_S:
                print("gave up waiting for eligibility", flush=True)
                break
        thread.join()
        return samples, uploaded
    finally:
        await admin.close()
        await consumer.stop()
        await conn.close()


async def take(conn: asyncpg.Connection, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient,
               partitions: list[TopicPartition], at: float, cpu: float) -> Sample:
    ends = await consumer.end_offsets(partitions)
    offsets = await admin.list_consumer_group_offsets(GROUP)
    committed = sum(max(0, meta.offset) for tp, meta in offsets.items() if tp.topic == HOUSEHOLD.name)
    stored = await conn.fetchval("SELECT count(*) FROM registry.households")
    assessed = await conn.fetchval("SELECT count(*) FROM eligibility.decisions WHERE active_rule")
    return Sample(at, stored, sum(ends.values()), committed, assessed, cpu)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def report(households: int, samples: list[Sample], uploaded: dict) -> None:
    if not samples or "report" not in uploaded:
        print("no result: the upload did not finish")
        return
    registered, upload_s = uploaded["report"]["registered"], uploaded["seconds"]
    last = samples[-1]
    published_at = next((s.at for s in samples if s.published >= last.published), last.at)
    assessed_at = next((s.at for s in samples if s.assessed >= last.assessed), last.at)
    during = [s for s in samples if s.at <= upload_s]
    second_half = [(s.at, s.lag) for s in during if s.at >= upload_s / 2]
    drain = max(0.0, assessed_at - max(upload_s, published_at))
    print()
    print(f"import: {registered:,} of {households:,} households registered in {upload_s:.1f} s "
          f"({registered / upload_s:,.0f}/s stored), {last.published:,} events published by {published_at:.0f} s "
          f"({registered / published_at:,.0f} households/s published)")
    at_end = during[-1].assessed if during else 0
    print(f"live assessment: {last.assessed:,} households assessed by {assessed_at:.0f} s "
          f"({last.assessed / assessed_at:,.0f}/s from the first byte uploaded; {at_end / upload_s:,.0f}/s while the"
          f" import ran); eligibility CPU {last.eligibility_cpu * 1e6 / max(1, last.assessed):,.0f} µs a household")
    print(f"lag during the import: max {max((s.lag for s in during), default=0):,} events, at the import's end "
          f"{during[-1].lag if during else 0:,}; slope over its second half {slope(second_half):+,.0f} events/s "
          f"(~0: bounded; > 0: growing); drained {drain:.0f} s after the registry was done")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


def _token(auth) -> str:
    request = httpx.Request("GET", "http://token")
    return next(auth.auth_flow(request)).headers["authorization"].removeprefix("Bearer ")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, float(sys.argv[2]) if len(sys.argv) > 2 else 5.0)
