"""Benchmark: webhook deliveries to 10 agencies, one of which fails, the others not slowed.

    make bench-webhooks                # or: python -m tests.benchmark.webhook_delivery [NOTIFICATIONS]

On a fresh embedded PostgreSQL, 10 agencies each subscribe with a local receiver (an HTTP/1.1
keep-alive server in a process of its own, answering at once). NOTIFICATIONS notifications (50,000
by default) are queued evenly over the 10 subscriptions, through `store.deliveries.queue` as the
consumer queues them; then one delivery worker, as the service runs it (messages of 100,
signed, the record of processing written), sends them. Each failing case runs between two
healthy baselines, on the same machine moments before and after: all healthy; one agency
answering 500 to everything; all healthy; one agency never answering (each POST ends at the 2 s
timeout); all healthy. Prints each agency's delivered/s (its notifications over the time until its
last one was acknowledged), the total of the healthy ones, and for each failing case the ratio of
the other nine agencies' mean rate to theirs in the baselines either side (1.0: not slowed at
all; the machine's other work moves the baselines too), with the load average. Figures, not assertions: the issue asks for at least 2,000 deliveries/s with the
healthy agencies not slowed by the failing one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from prometheus_client import CollectorRegistry

import ejsika_notifications
from ejsika_notifications.crypto import SecretCipher, new_key
from ejsika_notifications.domain.agencies import Agency
from ejsika_notifications.domain.deliveries import PlannedDelivery
from ejsika_notifications.domain.subscriptions import Filter, new_secret
from ejsika_notifications.egress import Egress
from ejsika_notifications.metrics import DeliveryMetrics
from ejsika_notifications.store import deliveries, subscriptions
from ejsika_notifications.worker import DeliveryPolicy, DeliveryWorker
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.embedded import EmbeddedPostgres, free_port

from . import scratch

MIGRATIONS = Path(ejsika_notifications.__file__).parent / "migrations"
AGENCIES = 10
CHUNK = 5_000
POLICY = DeliveryPolicy(timeout_s=2.0, lease_s=10.0)
# Each failing case right after its baseline: "not slowed" is a ratio within one run.
SCENARIOS = [("healthy", None), ("one answers 500", "500"), ("healthy", None), ("one never answers", "hang"),
             ("healthy", None)]


def main(notifications: int) -> None:
    logging.getLogger("ejsika_notifications").setLevel(logging.ERROR)  # a line per failed POST, else
    with scratch("ejsika-bench-webhooks-") as state, EmbeddedPostgres(state, port=free_port()) as postgres:
        print(f"{notifications:,} notifications over {AGENCIES} agencies, messages of {POLICY.batch_size}, "
              f"{POLICY.concurrency} POSTs in flight at most, {POLICY.agency_concurrency} per agency")
        results = [(name, asyncio.run(run(postgres.dsn, notifications, failing))) for name, failing in SCENARIOS]
    report(results)


async def run(dsn: str, notifications: int, failing: str | None) -> dict[str, float | None]:
    """One scenario on a fresh schema: each agency's delivered/s (None for the failing one)."""
    schema = f"notifications_{uuid.uuid4().hex[:6]}"
    ports = [free_port() for _ in range(AGENCIES)]
    modes = [failing if i == AGENCIES - 1 and failing else "ok" for i in range(AGENCIES)]
    receiver = multiprocessing.get_context("spawn").Process(target=serve, args=(ports, modes), daemon=True)
    receiver.start()
    pool = await create_pool(dsn, schema, size=20)
    try:
        await migrate(pool, schema, MIGRATIONS)
        cipher = SecretCipher.from_setting(new_key())
        codes = [f"opd-{i:02d}" for i in range(AGENCIES)]
        targets = await subscribe(pool, codes, ports, cipher)
        per_agency = notifications // AGENCIES
        await queue(pool, targets, per_agency)
        await pool.execute("ANALYZE")
        await wait_listening(ports)
        worker = DeliveryWorker(pool, POLICY, DeliveryMetrics(CollectorRegistry()), database_url=dsn, schema=schema,
                                cipher=cipher, egress=Egress(allow_private=True))
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        healthy = [s for s, mode in zip(targets, modes) if mode == "ok"]
        finished = await finish_times(pool, healthy, per_agency, started)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rates: dict[str, float | None] = {code: per_agency / finished[s] for code, s in zip(codes, targets) if s in finished}
        rates["total"] = per_agency * len(healthy) / max(finished.values())
        rates["load"] = os.getloadavg()[0]  # the machine's: other work on its cores moves every figure
        rates["others"] = statistics.mean(rate for code, rate in rates.items()
                                          if code.startswith("opd-") and code != codes[-1])
        for code, mode in zip(codes, modes):
            if mode != "ok":
                rates[code] = None
                rates["failing: " + mode] = await pool.fetchval(
                    "SELECT count(*) FROM webhook_messages WHERE subscription_id = $1", targets[codes.index(code)])
        return rates
    finally:
        await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
        receiver.kill()


async def subscribe(pool: asyncpg.Pool, codes: list[str], ports: list[int], cipher: SecretCipher) -> list[uuid.UUID]:
    ids = []
    async with pool.acquire() as conn:
        for code, port in zip(codes, ports):
            await subscriptions.add_agency(conn, Agency(code, code.upper(), frozenset({"eligible"})))
            record = await subscriptions.add_subscription(
                conn, agency=code, event_type="eligibility.assessed", filter=Filter("36"),
                url=f"http://127.0.0.1:{port}/webhooks", secret_encrypted=cipher.encrypt(new_secret()))
            ids.append(record.id)
    return ids


async def queue(pool: asyncpg.Pool, targets: list[uuid.UUID], per_agency: int) -> None:
    """Interleaved as a consumer's batches would queue them (each event matching one agency)."""
    planned = [PlannedDelivery(target, uuid.uuid4(), uuid.uuid4(), {"eligible": True, "region_code": "3672011001"},
                               reference=uuid.uuid4().hex[:26], event_type="eligibility.assessed")
               for _ in range(per_agency) for target in targets]
    async with pool.acquire() as conn:
        for start in range(0, len(planned), CHUNK):
            async with conn.transaction():
                await deliveries.queue(conn, planned[start:start + CHUNK])


async def finish_times(pool: asyncpg.Pool, healthy: list[uuid.UUID], per_agency: int,
                       started: float) -> dict[uuid.UUID, float]:
    """Seconds from the start until each healthy subscription had all its notifications delivered."""
    finished: dict[uuid.UUID, float] = {}
    while len(finished) < len(healthy):
        await asyncio.sleep(0.1)
        rows = await pool.fetch(
            "SELECT subscription_id, count(*) AS n FROM deliveries WHERE status = 'delivered'"
            " AND subscription_id = ANY($1::uuid[]) GROUP BY 1", healthy)
        now = time.perf_counter() - started
        for row in rows:
            if row["n"] >= per_agency and row["subscription_id"] not in finished:
                finished[row["subscription_id"]] = now
    return finished


async def wait_listening(ports: list[int]) -> None:
    for port in ports:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.1)


def serve(ports: list[int], modes: list[str]) -> None:
    """The agencies' receivers: HTTP/1.1 with keep-alive; "ok" answers 200 at once, "500" a 500,
    "hang" never answers."""
    async def receive(mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                json.loads(await reader.readexactly(length))  # read it as an agency would
                if mode == "hang":
                    await asyncio.sleep(3600)
                status = b"500 Internal Server Error" if mode == "500" else b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(lambda r, w, m=mode: receive(m, r, w), "127.0.0.1", port)
                   for port, mode in zip(ports, modes)]
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def report(results: list[tuple[str, dict[str, float | None]]]) -> None:
    """A column per run, in the order they ran; then each failing case against the baseline before it."""
    print()
    print(f"{'agency':<22}" + "".join(f"{name:>20}" for name, _ in results))
    agencies = [k for k in results[0][1] if k.startswith("opd-")]
    for code in agencies:
        cells = ["failing" if rates.get(code) is None else f"{rates[code]:,.0f}/s" for _, rates in results]
        print(f"{code:<22}" + "".join(f"{c:>20}" for c in cells))
    print(f"{'healthy total':<22}" + "".join(f"{rates['total']:>18,.0f}/s" for _, rates in results))
    print(f"{'load average (1 min)':<22}" + "".join(f"{rates['load']:>20.1f}" for _, rates in results))
    for i in range(1, len(results), 2):
        (failing, rates), around = results[i], [results[i - 1][1]["others"], results[i + 1][1]["others"]]
        baseline = statistics.mean(around)
        print(f"{failing}: the other {AGENCIES - 1} agencies' mean rate {rates['others']:,.0f}/s against"
              f" {baseline:,.0f}/s in the healthy runs either side ({around[0]:,.0f}, {around[1]:,.0f}):"
              f" ratio {rates['others'] / baseline:.2f}")
    for name, rates in results:
        for key, value in rates.items():
            if key.startswith("failing: "):
                print(f"{name}: the failing agency's notifications formed {value} messages, each tried at its own pace")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
