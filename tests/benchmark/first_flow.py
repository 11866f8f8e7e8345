"""Benchmark: 100,000 households through the first flow, next to the raw Kafka/PostgreSQL loop.

    make bench                       # or: python -m tests.benchmark.first_flow [HOUSEHOLDS]

Prints events/s per service (consumers timed by their inbox, intake by its rows) and the
latency from each HTTP registration to the agency's webhook. Figures, not assertions.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import httpx
import uvicorn

from ejsika_contracts import ELIGIBILITY, HOUSEHOLD
from ejsika_notifications.crypto import SecretCipher
from ejsika_notifications.demo import ensure_demo_subscription
from ejsika_notifications.pseudonyms import Pseudonyms
from ejsika_registry.api import Registration
from ejsika_registry.domain.registration import register
from ejsika_runtime.demo.launcher import demo_auth, local_keys, new_webhook_secret, start_services, stop, wait_ready
from ejsika_runtime.demo.receiver import receiver_app
from ejsika_runtime.demo.synthetic import Families
from ejsika_runtime.embedded import EmbeddedStack, free_port
from ejsika_runtime.kafka import create_topics

from . import raw_loop, scratch

BATCH = 1000
IN_FLIGHT = 4
RAW_EVENTS = 100_000
RAW_RUNS = 3  # the raw loop moves most from run to run: its median is the yardstick

# Per stage: the table and moment column of what it handled, and which rows. Consumers are timed
# by their inbox: every input event, whether or not it led to more work.
STAGES = {
    "registry (HTTP intake)": ("registry.households", "registered_at", "true"),
    "eligibility": ("eligibility.inbox", "applied_at", f"topic = '{HOUSEHOLD.name}'"),
    "monitoring": ("monitoring.inbox", "applied_at", f"topic = '{HOUSEHOLD.name}'"),
    "registry (status)": ("registry.inbox", "applied_at", f"topic = '{ELIGIBILITY.name}'"),
    "notifications": ("notifications.inbox", "applied_at", f"topic = '{ELIGIBILITY.name}'"),
    "  webhooks delivered": ("notifications.deliveries", "delivered_at", "status = 'delivered'"),
}


def request_bodies(registrations: list[dict]) -> list[bytes]:
    """The JSON of each batch request, encoded before the clock starts: it is the client's work,
    and on two shared cores it would slow the registry it is measuring."""
    return [json.dumps({"registrations": registrations[i:i + BATCH]}).encode()
            for i in range(0, len(registrations), BATCH)]


def post_all(url: str, bodies: list[bytes], sent_at: dict[str, float], auth: httpx.Auth) -> int:
    def post(body: bytes) -> int:
        with httpx.Client(timeout=120, auth=auth) as client:
            started = time.time()
            response = client.post(f"{url}/households/batch", content=body,
                                   headers={"content-type": "application/json"})
            response.raise_for_status()
            results = response.json()["results"]
            for result in results:
                sent_at[result["household_id"]] = started
            return sum(r["result"] == "registered" for r in results)

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        return sum(pool.map(post, bodies))


async def wait_for(database_url: str, sql: str, expected: int, timeout: float) -> None:
    conn = await asyncpg.connect(database_url)
    deadline = time.monotonic() + timeout
    try:
        while (await conn.fetchval(sql)) < expected and time.monotonic() < deadline:
            await asyncio.sleep(1)
    finally:
        await conn.close()


async def rates(database_url: str) -> dict[str, tuple[int, float, float]]:
    """Per stage: events, steady events/s (the middle 90 % of them), events/s over the whole drain.

    The steady rate leaves out the start (consumers joining their group) and the tail, as the
    raw loop's timer does; the whole-drain rate keeps them.
    """
    conn = await asyncpg.connect(database_url)
    try:
        out = {}
        for name, (table, moment, where) in STAGES.items():
            count, first, last, p05, p95 = await conn.fetchrow(
                f"SELECT count(*), min({moment}), max({moment}),"
                f" percentile_disc(0.05) WITHIN GROUP (ORDER BY {moment}),"
                f" percentile_disc(0.95) WITHIN GROUP (ORDER BY {moment}) FROM {table} WHERE {where}"
            )
            whole, middle = (last - first).total_seconds(), (p95 - p05).total_seconds()
            out[name] = (count, 0.9 * count / middle if middle else float("nan"),
                         count / whole if whole else float("nan"))
        return out
    finally:
        await conn.close()


def main(households: int, latency_households: int = 5_000) -> None:
    with scratch("ejsika-bench-") as state:
        measure(state, households, latency_households)


def measure(state: Path, households: int, latency_households: int) -> None:
    with EmbeddedStack(state, postgres_port=free_port(), kafka_port=free_port(),
                       kafka_controller_port=free_port(), keycloak_port=free_port(), progress=print) as stack:
        asyncio.run(create_topics(stack.kafka_bootstrap))
        database_url = stack.database_url
        families = Families(seed=7)
        size = event_size(families)
        raw, raw_runs = {}, {}
        for event_bytes in (630, size):
            print(f"raw aiokafka → asyncpg → aiokafka loop, {RAW_RUNS} × {RAW_EVENTS:,} events"
                  f" of {event_bytes:,} bytes …", flush=True)
            raw_runs[event_bytes] = [
                asyncio.run(raw_loop.run(stack.kafka_bootstrap, database_url, RAW_EVENTS, event_bytes))
                for _ in range(RAW_RUNS)
            ]
            raw[event_bytes] = statistics.median(raw_runs[event_bytes])

        keys = local_keys()
        secret = new_webhook_secret()
        receiver = receiver_app(secret)
        receiver_port = free_port()
        server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=receiver_port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        asyncio.run(ensure_demo_subscription(f"http://127.0.0.1:{receiver_port}/webhooks", secret=secret,
                                             database_url=database_url,
                                             cipher=SecretCipher.from_setting(keys["EJSIKA_SECRETS_KEYS"])))

        env = {**os.environ, "EJSIKA_DATABASE_URL": database_url, "EJSIKA_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
               "EJSIKA_AUTH_ISSUER": stack.auth_issuer, **keys, "EJSIKA_WEBHOOKS_ALLOW_PRIVATE": "true",
               "EJSIKA_WRITE_RATE_PER_S": "1000", "EJSIKA_WRITE_BURST": "1000", "EJSIKA_LOG_LEVEL": "WARNING"}
        pendamping = demo_auth(stack, "ejsika-tests", "pendamping-demo")
        ports = {name: free_port() for name in ("registry", "monitoring", "eligibility", "notifications")}
        registry_url = f"http://127.0.0.1:{ports['registry']}"
        processes: dict = {}

        def run(*names: str) -> None:
            processes.update(start_services(env, {name: ports[name] for name in names}))
            wait_ready({name: ports[name] for name in names}, processes, timeout=120)

        def drain(name: str, progress_sql: str, expected: int) -> None:
            """Run one service alone on its backlog, so its rate is its own and not its input's."""
            run(name)
            asyncio.run(wait_for(database_url, progress_sql, expected, 900))
            asyncio.run(wait_for(database_url, f"SELECT (count(*) = 0)::int FROM {name}.outbox", 1, 300))
            if name != "registry":
                stop([processes.pop(name)])

        try:
            print(f"capacity: {households:,} households, one service at a time …", flush=True)
            run("registry")
            bodies = request_bodies(families.registrations(households))
            started = time.time()
            registered = post_all(registry_url, bodies, {}, pendamping)
            http_rate = registered / (time.time() - started)
            asyncio.run(wait_for(database_url, "SELECT (count(*) = 0)::int FROM registry.outbox", 1, 300))
            stop([processes.pop("registry")])
            drain("eligibility", "SELECT count(*) FROM eligibility.assessments", registered)
            drain("monitoring", "SELECT count(*) FROM monitoring.visits", registered)
            eligible = asyncio.run(_fetchval(database_url, "SELECT count(*) FROM eligibility.assessments WHERE eligible"))
            drain("registry", "SELECT count(*) FROM registry.households WHERE status <> 'registered'", registered)
            drain("notifications", "SELECT count(*) FROM notifications.deliveries WHERE status = 'delivered'", eligible)
            run("eligibility", "monitoring", "notifications")
            measured = asyncio.run(rates(database_url))

            # Latency: everything running, households arriving at a steady pace.
            print(f"latency: {latency_households:,} households at a steady pace, all services running …", flush=True)
            receiver.state.received.clear()
            sent_at: dict[str, float] = {}
            for start in range(0, latency_households, 50):
                post_all(registry_url, request_bodies(families.registrations(min(50, latency_households - start))),
                         sent_at, pendamping)
                time.sleep(0.05)
            eligible_total = asyncio.run(_fetchval(database_url,
                                                   "SELECT count(*) FROM eligibility.assessments WHERE eligible"))
            asyncio.run(wait_for(database_url,
                                 "SELECT count(*) FROM notifications.deliveries WHERE status = 'delivered'",
                                 eligible_total, 300))
        finally:
            stop(processes.values())
            server.should_exit = True

    # The agency knows each family by its own reference (a pseudonym of the notifications service).
    pseudonyms = Pseudonyms(keys["EJSIKA_PSEUDONYM_KEY"].encode())
    sent_by_reference = {pseudonyms.reference_of("dinas-pendidikan", UUID(h)): at for h, at in sent_at.items()}
    latencies = sorted(
        hook["at"] - sent_by_reference[item["reference"]]
        for hook in receiver.state.received for item in hook["payload"]["notifications"]
        if item["reference"] in sent_by_reference
    )
    print()
    print(f"households registered: {registered:,}  (HTTP intake {http_rate:,.0f}/s, batches of {BATCH})")
    print(f"{'stage':<24}{'events':>10}{'events/s':>12}{'vs raw':>9}{'whole drain':>14}")
    for event_bytes, rate in raw.items():
        runs = ", ".join(f"{r:,.0f}" for r in raw_runs[event_bytes])
        print(f"{f'raw loop, {event_bytes:,} B':<24}{RAW_EVENTS:>10,}{rate:>12,.0f}{rate / raw[size]:>9.0%}"
              f"   (median of {runs})")
    for name, (count, steady, whole) in measured.items():
        print(f"{name:<24}{count:>10,}{steady:>12,.0f}{steady / raw[size]:>9.0%}{whole:>14,.0f}")
    print(f"(vs raw: against the median raw loop moving events of the platform's size, {size:,} B)")
    if latencies:
        cuts = statistics.quantiles(latencies, n=100)
        print(f"HTTP request → webhook over {len(latencies):,} eligible households of a steady flow of "
              f"{latency_households:,}: p50 {cuts[49]:.2f} s, p95 {cuts[94]:.2f} s")


def event_size(families: Families, sample: int = 200) -> int:
    """Mean bytes of a household.registered event, built by the registry's own code."""
    # a pendamping is named by the identity provider's subject, a UUID
    events = [register(Registration.model_validate(r).to_data(pendamping_id=str(uuid4())), uuid4())
              for r in families.registrations(sample)]
    return round(statistics.mean(len(e.to_bytes()) for e in events))


async def _fetchval(database_url: str, sql: str):
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
