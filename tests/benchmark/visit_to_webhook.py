"""Benchmark: from a visit posted to the monitoring API to the matching agency's webhook received.

    make bench-visit-webhook           # or: python -m tests.benchmark.visit_to_webhook [RATE] [SECONDS]

On the embedded stack, registry, monitoring and notifications run as the real services. The
registry registers RATE x SECONDS families of the demo pendamping (one per visit, so that a webhook
names its visit by the family's reference); once monitoring and notifications have learnt them,
the health office (dinas-kesehatan) subscribes to `visit.recorded` in Banten (region prefix 36, a
filter that needs the family's projection) with a local receiver: an HTTP/1.1 keep-alive server
in a process of its own that stamps each notification's arrival. Then the pendamping posts one
visit a request to POST /visits at a steady RATE a second (200 by default) for SECONDS (60), open
loop, over keep-alive connections.

Prints, over the visits matched to a webhook: p50, p95, p99 and max from the moment each POST was
due to leave the client to the notification reaching the receiver, and the same cut at the stages
between (monitoring's handler reached; the POST answered; notifications queued it, i.e. its
consumer's batch began; the delivery worker put it in a webhook message); then from monitoring's
handler to the receiver (the event path, without the wait in front of the HTTP intake), with the
load average. The issue's target: p95 under 1 s. Figures, not assertions.

CPU per visit is printed per service process, and for PostgreSQL (the postmaster and its backends)
and Kafka. With EJSIKA_PG_STAT_STATEMENTS=1 the benchmark's PostgreSQL loads pg_stat_statements
and the statements that took the most time over the visits are printed, with their calls per visit,
and the transactions committed per visit (the whole chain's).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from ejsika_contracts import VISIT, VisitRecorded
from ejsika_notifications.crypto import SecretCipher
from ejsika_notifications.domain.agencies import HEALTH
from ejsika_notifications.domain.subscriptions import Filter, new_secret
from ejsika_notifications.pseudonyms import Pseudonyms
from ejsika_notifications.store import subscriptions
from ejsika_runtime.auth_tokens import Bearer
from ejsika_runtime.db import create_pool
from ejsika_runtime.demo.launcher import demo_auth, local_keys, start_services, stop, wait_ready
from ejsika_runtime.demo.synthetic import Families
from ejsika_runtime.embedded import EmbeddedStack, free_port
from ejsika_runtime.embedded.postgres import STATEMENT_STATISTICS_ENV
from ejsika_runtime.kafka import create_topics

from . import scratch, tree_cpu_seconds
from .first_flow import post_all, request_bodies, wait_for

WIB = timezone(timedelta(hours=7))
SERVICES = ("registry", "monitoring", "notifications")
CONNECTIONS = 64  # keep-alive connections to monitoring: a request waits for a free one


def main(rate: int, seconds: int) -> None:
    with scratch("ejsika-bench-visit-webhook-") as state, EmbeddedStack(
        state / "stack", postgres_port=free_port(), kafka_port=free_port(), kafka_controller_port=free_port(),
        keycloak_port=free_port(), progress=print,
    ) as stack:
        asyncio.run(create_topics(stack.kafka_bootstrap))
        keys = local_keys()
        env = {**os.environ, "EJSIKA_DATABASE_URL": stack.database_url, "EJSIKA_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
               "EJSIKA_AUTH_ISSUER": stack.auth_issuer, **keys, "EJSIKA_WEBHOOKS_ALLOW_PRIVATE": "true",
               "EJSIKA_WRITE_RATE_PER_S": str(4 * rate), "EJSIKA_WRITE_BURST": str(4 * rate),
               "EJSIKA_LOG_LEVEL": "WARNING"}
        pendamping = demo_auth(stack, "ejsika-tests", "pendamping-demo")
        ports = {name: free_port() for name in SERVICES}
        visits = rate * seconds
        arrivals: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
        receiver_port = free_port()
        receiver = multiprocessing.get_context("spawn").Process(target=serve, args=(receiver_port, arrivals), daemon=True)
        processes: dict = {}
        try:
            receiver.start()
            processes.update(start_services(env, ports))
            wait_ready(ports, processes, timeout=180)
            print(f"registering {visits:,} families of the demo pendamping (one per visit) …", flush=True)
            post_all(f"http://127.0.0.1:{ports['registry']}",
                     request_bodies(Families(seed=23).registrations(visits)), {}, pendamping)
            for table in ("monitoring.households", "notifications.families"):
                asyncio.run(wait_for(stack.database_url, f"SELECT count(*) FROM {table}", visits, 600))
            asyncio.run(subscribe(stack.database_url, keys["EJSIKA_SECRETS_KEYS"], receiver_port))
            families = asyncio.run(members_of(stack.database_url))
            print(f"posting {visits:,} visits, one a request, {rate}/s for {seconds} s …", flush=True)
            pids = {**{name: p.pid for name, p in processes.items()}, **servers(stack)}
            statements = asyncio.run(Statements.start(stack.database_url))
            before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
            posted = asyncio.run(post_visits(ports["monitoring"], families, rate, pendamping))
            received = collect(arrivals, len(posted), timeout=120)
            cpu = {name: (tree_cpu_seconds(pid) - before[name]) / max(1, len(posted)) for name, pid in pids.items()}
            statements = asyncio.run(statements.finish(stack.database_url, len(posted)))
            stages = asyncio.run(stage_times(stack.database_url))
            try:
                published = asyncio.run(publish_times(stack.kafka_bootstrap))
            except Exception as error:  # a stage less, not the run lost
                print(f"the relay's publishing times could not be read: {type(error).__name__}: {error}")
                published = {}
            load = os.getloadavg()
        finally:
            stop(processes.values())
            receiver.kill()
    report(rate, seconds, posted, received, stages, Pseudonyms(keys["EJSIKA_PSEUDONYM_KEY"].encode()), load,
           published)
    print("CPU per visit (the process and its children, whatever the machine's load): "
          + ", ".join(f"{name} {1000 * seconds_each:.2f} ms" for name, seconds_each in cpu.items())
          + f"; in all {1000 * sum(cpu.values()):.2f} ms")
    print(statements)


def servers(stack: EmbeddedStack) -> dict[str, int]:
    """The embedded PostgreSQL's and Kafka's process ids (those the stack started itself)."""
    found = {}
    for name, server in (("postgresql", stack._postgres), ("kafka", stack._kafka)):
        process = getattr(server, "_proc", None)
        if process is not None:
            found[name] = process.pid
    return found


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User and system CPU a process has used (Linux /proc), with that of its children that ended
    when `children`: what a visit costs, unlike a wall clock, does not move with the other work on
    the machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


class Statements:
    """PostgreSQL's transactions and (with pg_stat_statements loaded) statements over the visits."""

    TOP = 20

    def __init__(self, enabled: bool, commits: int, backends: dict[int, tuple[str, float]]) -> None:
        self.enabled, self.commits, self.backends = enabled, commits, backends

    @classmethod
    async def start(cls, database_url: str) -> Statements:
        conn = await asyncpg.connect(database_url)
        try:
            enabled = os.environ.get(STATEMENT_STATISTICS_ENV, "") not in ("", "0")
            if enabled:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                await conn.execute("SELECT pg_stat_statements_reset()")
            await conn.execute("SELECT pg_stat_force_next_flush()")
            return cls(enabled, await cls._commits(conn), await cls._backends(conn))
        finally:
            await conn.close()

    @staticmethod
    async def _commits(conn: asyncpg.Connection) -> int:
        return await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")

    @staticmethod
    async def _backends(conn: asyncpg.Connection) -> dict[int, tuple[str, float]]:
        """Each PostgreSQL process, named by the role it serves (a service's) or its kind, with its CPU."""
        rows = await conn.fetch("SELECT pid, coalesce(usename::text || ' (client)', backend_type) AS name"
                                " FROM pg_stat_activity")
        return {r["pid"]: (r["name"], cpu_seconds(r["pid"])) for r in rows}

    async def finish(self, database_url: str, visits: int) -> str:
        await asyncio.sleep(1.5)  # backends report their counts to the statistics at least every second
        conn = await asyncpg.connect(database_url)
        try:
            visits = max(1, visits)
            lines = [f"PostgreSQL: {(await self._commits(conn) - self.commits) / visits:.2f} transactions committed"
                     " per visit (the chain's, with the idle loops')"]
            spent: dict[str, float] = {}
            for pid, (name, cpu) in (await self._backends(conn)).items():
                spent[name] = spent.get(name, 0.0) + cpu - self.backends.get(pid, (name, 0.0))[1]
            lines.append("PostgreSQL's CPU per visit by process (living ones): " + ", ".join(
                f"{name} {1000 * cpu / visits:.2f} ms" for name, cpu in sorted(spent.items(), key=lambda i: -i[1])))
            if self.enabled:
                rows = await conn.fetch(
                    "SELECT calls, total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g') AS query"
                    " FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'"
                    " ORDER BY total_exec_time DESC LIMIT $1", self.TOP)
                total = await conn.fetchval("SELECT sum(total_exec_time) FROM pg_stat_statements")
                calls = await conn.fetchval("SELECT sum(calls) FROM pg_stat_statements")
                lines.append(f"statements: {calls / visits:.1f} calls and {total / visits:.3f} ms of execution"
                             f" per visit; the top {self.TOP} by time:")
                lines.append(f"  {'ms/visit':>8} {'calls/visit':>11} {'rows/call':>9}  query")
                for r in rows:
                    lines.append(f"  {r['total_exec_time'] / visits:8.3f} {r['calls'] / visits:11.2f}"
                                 f" {r['rows'] / max(1, r['calls']):9.1f}  {r['query'][:160]}")
                rows = await conn.fetch(
                    "SELECT s.calls, s.total_exec_time, s.rows, u.usename,"
                    " regexp_replace(s.query, '\\s+', ' ', 'g') AS query FROM pg_stat_statements s"
                    " LEFT JOIN pg_user u ON u.usesysid = s.userid"
                    " WHERE s.query NOT LIKE '%pg_stat_statements%' ORDER BY s.calls DESC LIMIT $1", self.TOP)
                lines.append(f"the top {self.TOP} by calls:")
                for r in rows:
                    lines.append(f"  {r['total_exec_time'] / visits:8.3f} {r['calls'] / visits:11.2f}"
                                 f" {r['rows'] / max(1, r['calls']):9.1f}  {r['usename']}: {r['query'][:140]}")
            return "\n".join(lines)
        finally:
            await conn.close()


async def subscribe(database_url: str, secrets_keys: str, port: int) -> None:
    """The health office hears of every visit in Banten, at once, at the local receiver."""
    cipher = SecretCipher.from_setting(secrets_keys)
    pool = await create_pool(database_url, "notifications", size=1)
    try:
        async with pool.acquire() as conn:
            await subscriptions.add_agency(conn, HEALTH)
            await subscriptions.add_subscription(
                conn, agency=HEALTH.code, event_type=VisitRecorded.event_type, filter=Filter(region_prefix="36"),
                url=f"http://127.0.0.1:{port}/webhooks", secret_encrypted=cipher.encrypt(new_secret()))
    finally:
        await pool.close()


async def members_of(database_url: str) -> dict[str, str]:
    """Each family with one of its members (the toddler weighed at the visit)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT DISTINCT ON (household_id) household_id, member_id"
                                " FROM notifications.family_members ORDER BY household_id, birth_date DESC")
        return {str(r["household_id"]): str(r["member_id"]) for r in rows}
    finally:
        await conn.close()


def visit(household_id: str, member_id: str) -> bytes:
    now = datetime.now(WIB)
    return json.dumps({
        "visit_id": str(uuid4()), "household_id": household_id, "captured_at": (now - timedelta(seconds=1)).isoformat(),
        "location": {"latitude": -6.01, "longitude": 106.05, "accuracy_m": 15},
        "observations": {"toddlers": [{"member_id": member_id, "weighed": True, "weight_kg": 11.5,
                                       "immunised_on_schedule": True}]},
    }).encode()


async def post_visits(port: int, families: dict[str, str], rate: int, auth: Bearer) -> dict[str, tuple[float, float]]:
    """One POST a visit, started on a fixed schedule (open loop: a slow answer must not slow the
    pace; a request waiting for a free connection waits on the clock). Returns, per family, when its
    POST was due to leave and when it was answered.

    The requests go over CONNECTIONS keep-alive HTTP/1.1 connections written here rather than
    through httpx: on the shared two cores, httpx's own work per request kept the pace under 50/s
    (the client, not the services, would have been measured), where these keep 200/s.
    """
    posted: dict[str, tuple[float, float]] = {}
    failed: dict[int | str, int] = {}
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(CONNECTIONS):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))

    async def post(household: str, body: bytes, due: float) -> None:
        reader, writer = await idle.get()
        try:
            writer.write(b"POST /visits HTTP/1.1\r\nhost: monitoring\r\ncontent-type: application/json\r\n"
                         b"authorization: Bearer " + auth.token().encode() +
                         b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            status = await answer(reader)
        except (OSError, asyncio.IncompleteReadError) as error:  # counted, not matched; a fresh connection
            failed[type(error).__name__] = failed.get(type(error).__name__, 0) + 1
            writer.close()
            idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
            return
        idle.put_nowait((reader, writer))
        if status == 201:
            posted[household] = (due, time.time())
        else:
            failed[status] = failed.get(status, 0) + 1

    bodies = [(h, visit(h, m)) for h, m in families.items()]
    auth.token()  # fetched before the clock starts
    started, wall, tasks = time.perf_counter(), time.time(), []
    for i, (household, body) in enumerate(bodies):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(post(household, body, wall + i / rate)))
    late = time.perf_counter() - started - (len(bodies) - 1) / rate
    await asyncio.gather(*tasks)
    for _, writer in [idle.get_nowait() for _ in range(idle.qsize())]:
        writer.close()
    print(f"posted {len(bodies):,} at {rate}/s, the last {late:.2f} s after its time; not recorded: {failed or 'none'}",
          flush=True)
    return posted


async def answer(reader: asyncio.StreamReader) -> int:
    """The status of an HTTP/1.1 answer, its body read (and dropped) so the connection can go on."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def stage_times(database_url: str) -> dict[str, tuple[float, float, float]]:
    """Per family: when monitoring's transaction recording its visit began, when notifications'
    batch queuing its notification began, and when its webhook message was formed."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT d.household_id, extract(epoch FROM v.received_at)::float8 AS recorded,"
            " extract(epoch FROM d.created_at)::float8 AS queued, extract(epoch FROM m.created_at)::float8 AS formed"
            " FROM notifications.deliveries d JOIN notifications.webhook_messages m ON m.id = d.message_id"
            " JOIN monitoring.visit_records v ON v.household_id = d.household_id"
            " WHERE d.event_type = $1", VisitRecorded.event_type)
        return {str(r["household_id"]): (r["recorded"], r["queued"], r["formed"]) for r in rows}
    finally:
        await conn.close()


async def publish_times(bootstrap: str) -> dict[str, float]:
    """Per family: when monitoring's relay handed its `visit.recorded` to Kafka (the record's timestamp,
    set by the relay's producer as it appended the record)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(VISIT.name, p) for p in range(VISIT.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: dict[str, float] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for r in records:
                    if dict(r.headers).get("ce_type") == VisitRecorded.event_type.encode():
                        found[r.key.decode()] = r.timestamp / 1000
        return found
    finally:
        await consumer.stop()


def collect(arrivals: multiprocessing.Queue, expected: int, timeout: float) -> dict[str, float]:
    """Each notification's reference and when it reached the receiver (the first time, if twice)."""
    received: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(received) < expected and time.monotonic() < deadline:
        try:
            at, references = arrivals.get(timeout=1)
        except Exception:  # queue.Empty: nothing yet
            continue
        for reference in references:
            received.setdefault(reference, at)
    return received


def serve(port: int, arrivals: multiprocessing.Queue) -> None:
    """The health office's receiver: reads each POST whole, stamps it, answers 204 at once."""
    async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                body = await reader.readexactly(length)
                at = time.time()
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
                arrivals.put((at, [n["reference"] for n in json.loads(body)["notifications"]]))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(receive, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


def cuts(values: list[float]) -> str:
    if len(values) < 2:
        return "too few to cut"
    q = statistics.quantiles(values, n=100)
    return f"p50 {q[49]:6.3f} s   p95 {q[94]:6.3f} s   p99 {q[98]:6.3f} s   max {max(values):6.3f} s"


def report(rate: int, seconds: int, posted: dict[str, tuple[float, float]], received: dict[str, float],
           stages: dict[str, tuple[float, float, float]], pseudonyms: Pseudonyms, load: tuple[float, float, float],
           published: dict[str, float]) -> None:
    whole, answered, recorded, queued, formed, onwards, relayed = [], [], [], [], [], [], []
    for household, (sent, answer) in posted.items():
        at = received.get(pseudonyms.reference_of(HEALTH.code, UUID(household)))
        if at is None:
            continue
        whole.append(at - sent)
        answered.append(answer - sent)
        if household in stages:
            recorded.append(stages[household][0] - sent)
            queued.append(stages[household][1] - sent)
            formed.append(stages[household][2] - sent)
            onwards.append(at - stages[household][0])
        if household in published:
            relayed.append(published[household] - sent)
    print()
    print(f"visits posted at {rate}/s for {seconds} s: {len(posted):,} recorded, {len(whole):,} matched to a webhook")
    if posted:
        span = max(a for _, a in posted.values()) - min(d for d, _ in posted.values())
        print(f"monitoring answered {len(posted) / span:,.0f} visits/s over the run (below {rate}/s: requests"
              " queued in front of it, and the figures below grow with the queue)")
    print(f"{'from the POST leaving the client to':<40}")
    print(f"  {'reaching monitoring (its handler)':<38}{cuts(recorded)}")
    print(f"  {'its answer (201)':<38}{cuts(answered)}")
    print(f"  {'published to Kafka by the relay':<38}{cuts(relayed)}")
    print(f"  {'queued by notifications':<38}{cuts(queued)}")
    print(f"  {'formed into a webhook message':<38}{cuts(formed)}")
    print(f"  {'received by the agency':<38}{cuts(whole)}")
    print(f"{'from monitoring handling it to':<40}")
    print(f"  {'received by the agency':<38}{cuts(onwards)}")
    print(f"load average (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    print("(the issue's target: p95 under 1 s from the visit posted to the webhook received)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else 60)
