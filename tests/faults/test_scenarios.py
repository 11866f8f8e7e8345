"""Faults injected while registrations and visits go through the platform; then the ledger check.

Each scenario offers its own families (seeded), injects its fault at a chosen state, waits for the
platform to recover and records a row of the suite's table (conftest.OUTCOMES). Sizes are modest
(tens to hundreds of families): the machine's two cores are shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from ejsika_contracts import HOUSEHOLD
from ejsika_runtime.demo.synthetic import Families

from .conftest import assert_clean, record, settle
from .ledger import read_topics
from .partition import Blackhole, host_and_port, through
from .platform import (
    FaultPlatform, Session, outbox_rows, record_visits, register, release_relay_lead, take_relay_lead,
    wait_for_lock_wait, wait_until,
)

pytestmark = [pytest.mark.infra, pytest.mark.faults]

FAMILIES = 60  # per scenario


def offered(households: list[str], visits: list[str]) -> int:
    return len(households) + len(visits)


def applied_by(platform: FaultPlatform, schema: str, table: str, column: str, ids: list[str]) -> int:
    session = Session(platform.database_url)
    try:
        return session.fetchval(f"SELECT count(*) FROM {schema}.{table} WHERE {column} = ANY($1::uuid[])",
                                [uuid.UUID(i) for i in ids])
    finally:
        session.close()


class Background:
    """Load that goes on while the fault is injected (a caseworker app retrying what fails)."""

    def __init__(self, target, *args) -> None:  # type: ignore[no-untyped-def]
        self.result, self.error = None, None

        def run() -> None:
            try:
                self.result = target(*args)
            except BaseException as error:  # noqa: BLE001 - handed to the test's thread
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 300):  # type: ignore[no-untyped-def]
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        assert not self.thread.is_alive(), "the load did not finish"
        return self.result


def paced_registrations(platform: FaultPlatform, families: list[dict], per_second: int) -> list[str]:
    accepted: list[str] = []
    for start in range(0, len(families), per_second):
        began = time.monotonic()
        accepted += register(platform, families[start:start + per_second], batch=per_second)
        time.sleep(max(0.0, 1 - (time.monotonic() - began)))
    return accepted


# --- kill -9 of each service at a chosen state ----------------------------------------------------

def test_registry_killed_with_its_outbox_full(fault_platform: FaultPlatform):
    platform, session = fault_platform, Session(fault_platform.database_url)
    try:
        take_relay_lead(session, "registry")  # the relay waits: what is registered stays in the outbox
        households = register(platform, Families(seed=1101).registrations(FAMILIES))
        assert outbox_rows(session, "registry") >= FAMILIES
        platform.kill("registry")
        release_relay_lead(session, "registry")
    finally:
        session.close()
    started = time.monotonic()
    platform.restart("registry")
    visits = record_visits(platform, households)
    findings, recovered = settle(platform, households, visits, started=started)
    assert_clean(record("registry kill -9, outbox full", offered(households, visits),
                        f"kill -9 registry with {FAMILIES}+ rows unpublished", findings, recovered))


def test_registry_killed_between_publish_and_delete(fault_platform: FaultPlatform):
    platform = fault_platform
    session, locker = Session(platform.database_url), Session(platform.database_url)
    try:
        take_relay_lead(session, "registry")
        households = register(platform, Families(seed=1102).registrations(FAMILIES))
        locker.execute("BEGIN")
        held = len(locker.run(locker.conn.fetch("SELECT id FROM registry.outbox FOR UPDATE")))
        assert held >= FAMILIES
        release_relay_lead(session, "registry")
        # The relay leads, publishes every row, and waits to delete them: Kafka has them now.
        wait_for_lock_wait(session, "DELETE FROM outbox")
        # Seen, not assumed: a relay deleting before Kafka acknowledges would wait here with nothing sent.
        homes = {uuid.UUID(h) for h in households}
        wait_until(lambda: len({r["_key"] for r in asyncio.run(read_topics(
            platform.kafka_bootstrap, [HOUSEHOLD.name], homes)).get(HOUSEHOLD.name, [])}) == len(homes), timeout=30)
        platform.kill("registry")
        # The dead process's DELETE would still run once the rows are free: end it as the crash would.
        session.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND ltrim(query) LIKE 'DELETE FROM outbox%'")
        locker.execute("ROLLBACK")
    finally:
        locker.close()
        session.close()
    started = time.monotonic()
    platform.restart("registry")
    visits = record_visits(platform, households)
    findings, recovered = settle(platform, households, visits, started=started)
    outcome = record("registry kill -9 between publish and delete", offered(households, visits),
                     f"kill -9 registry after Kafka acked {held} rows, before their delete", findings, recovered)
    assert_clean(outcome)
    assert findings.redelivered >= FAMILIES, "the rows were published again after the restart"


@pytest.mark.parametrize("service, table, column", [
    ("eligibility", "households", "household_id"),
    ("monitoring", "households", "household_id"),
    ("notifications", "families", "household_id"),
])
def test_consumer_killed_inside_a_batch(fault_platform: FaultPlatform, service: str, table: str, column: str):
    """Part of the stream applied and committed, the next batch inside its transaction (inbox claimed,
    its projection waiting on a lock) when the process dies."""
    platform = fault_platform
    families = Families(seed={"eligibility": 1201, "monitoring": 1202, "notifications": 1203}[service])
    first = register(platform, families.registrations(FAMILIES // 2))
    wait_until(lambda: applied_by(platform, service, table, column, first) > 0)
    session, locker = Session(platform.database_url), Session(platform.database_url)
    try:
        locker.execute("BEGIN")
        locker.execute(f"LOCK TABLE {service}.{table} IN SHARE MODE")  # its writers wait, readers go on
        second = register(platform, families.registrations(FAMILIES // 2))
        wait_for_lock_wait(session, "", application=f"ejsika-{service}")
        platform.kill(service)
        session.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name = $1", f"ejsika-{service}")
        locker.execute("ROLLBACK")
    finally:
        locker.close()
        session.close()
    started = time.monotonic()
    platform.restart(service)
    households = first + second
    visits = record_visits(platform, households)
    findings, recovered = settle(platform, households, visits, started=started)
    assert_clean(record(f"{service} kill -9 inside a batch", offered(households, visits),
                        f"kill -9 {service} with a batch's transaction open", findings, recovered))


def test_two_replicas_one_killed_during_the_rebalance(fault_platform: FaultPlatform):
    platform = fault_platform
    from ejsika_runtime.demo.launcher import start_services, stop, wait_ready
    from ejsika_runtime.embedded import free_port

    load = Background(paced_registrations, platform, Families(seed=1301).registrations(FAMILIES), 10)
    port = free_port()
    second = start_services(platform.env, {"eligibility": port}, platform.log_dir, platform.service_env)
    try:
        wait_ready({"eligibility": port}, second, timeout=120)  # it joined: the group rebalances
        platform.kill("eligibility")  # the first replica dies while its partitions move
        started = time.monotonic()
        households = load.join()
        platform.restart("eligibility")
        visits = record_visits(platform, households)
        findings, recovered = settle(platform, households, visits, started=started)
    finally:
        stop(second.values())
    assert_clean(record("eligibility: 2 replicas, one killed in a rebalance", offered(households, visits),
                        "a 2nd replica joins, kill -9 the 1st", findings, recovered))


# --- the broker and the database ------------------------------------------------------------------

def test_broker_killed_and_restarted(fault_platform: FaultPlatform):
    platform = fault_platform
    kafka = platform.stack._kafka  # noqa: SLF001 - the session's own embedded broker
    first = register(platform, Families(seed=1401).registrations(FAMILIES // 2))
    load = Background(paced_registrations, platform, Families(seed=1402).registrations(FAMILIES // 2), 5)
    proc, kafka._proc = kafka._proc, None  # noqa: SLF001
    proc.kill()
    proc.wait()
    time.sleep(10)  # the platform without its broker: HTTP writes go on into the outboxes
    started = time.monotonic()
    kafka.start()
    households = first + load.join()
    visits = record_visits(platform, households)
    findings, recovered = settle(platform, households, visits, started=started, timeout=360)
    assert_clean(record("Kafka broker kill -9, restarted after 10 s", offered(households, visits),
                        "kill -9 the broker", findings, recovered))


def test_database_restarted(fault_platform: FaultPlatform):
    platform = fault_platform
    postgres = platform.stack._postgres  # noqa: SLF001 - the session's own embedded PostgreSQL
    first = register(platform, Families(seed=1501).registrations(FAMILIES // 2))
    load = Background(paced_registrations, platform, Families(seed=1502).registrations(FAMILIES // 2), 5)
    postgres.stop()  # fast shutdown: every session of every service is ended
    time.sleep(5)
    started = time.monotonic()
    postgres.start()
    households = first + load.join()
    visits = record_visits(platform, households)
    findings, recovered = settle(platform, households, visits, started=started, timeout=360)
    assert_clean(record("PostgreSQL restarted (down 5 s)", offered(households, visits),
                        "fast shutdown of PostgreSQL", findings, recovered))


def test_broker_frozen_then_thawed(fault_platform: FaultPlatform):
    """The services cut off from the broker (SIGSTOP: connections open, no answer) for 30 s."""
    platform = fault_platform
    pid = platform.stack._kafka._proc.pid  # noqa: SLF001
    load = Background(paced_registrations, platform, Families(seed=1601).registrations(FAMILIES), 5)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(30)
    finally:
        os.kill(pid, signal.SIGCONT)
    started = time.monotonic()
    households = load.join()
    visits = record_visits(platform, households)
    findings, recovered = settle(platform, households, visits, started=started, timeout=360)
    assert_clean(record("broker frozen 30 s (SIGSTOP)", offered(households, visits),
                        "services cut off from Kafka", findings, recovered))


def test_service_cut_off_from_the_database(fault_platform: FaultPlatform):
    """Eligibility's sessions ended again and again for 20 s, as a flapping network would end them."""
    platform, session = fault_platform, Session(fault_platform.database_url)
    load = Background(paced_registrations, platform, Families(seed=1701).registrations(FAMILIES), 5)
    cut = 0
    try:
        until = time.monotonic() + 20
        while time.monotonic() < until:
            cut += session.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                    " WHERE datname = current_database() AND (application_name = 'ejsika-eligibility'"
                                    " OR usename LIKE '%eligibility%')")
            time.sleep(0.5)
    finally:
        session.close()
    started = time.monotonic()
    households = load.join()
    visits = record_visits(platform, households)
    findings, recovered = settle(platform, households, visits, started=started)
    assert_clean(record("eligibility cut off from PostgreSQL 20 s", offered(households, visits),
                        f"{cut} sessions of eligibility ended", findings, recovered))


PARTITION_S = 45
# The service's own limits, below the cut (60 s by default), so that the cut takes the paths they guard:
# a statement unanswered is cancelled, a session idle inside its transaction is ended by the server.
SHORT_TIMEOUTS = {"EJSIKA_DB_COMMAND_TIMEOUT_S": "10", "EJSIKA_DB_IDLE_IN_TRANSACTION_TIMEOUT_S": "10"}


def test_service_partitioned_from_the_broker_and_the_database(fault_platform: FaultPlatform,
                                                              broker_forwarder: Blackhole | None):
    """Eligibility reaches PostgreSQL and Kafka through forwarders (partition.py) that go silent for
    45 s while registrations flow: its connections stay open and nothing answers on them. It reports
    not ready while cut and ready after, without a restart, and the ledger finds nothing lost or doubled."""
    platform, service = fault_platform, "eligibility"
    own = dict(platform.service_env[service])
    database = Blackhole(*host_and_port(own["EJSIKA_DATABASE_URL"])).start()
    forwarders = [database] + ([broker_forwarder] if broker_forwarder is not None else [])
    routed = {**own, **SHORT_TIMEOUTS, "EJSIKA_DATABASE_URL": through(own["EJSIKA_DATABASE_URL"], database)}
    if broker_forwarder is not None:
        routed["EJSIKA_KAFKA_BOOTSTRAP"] = broker_forwarder.address
    try:
        platform.reroute(service, routed)
        process = platform.processes[service]
        session = Session(platform.database_url)
        try:
            inbox = f"SELECT count(*) FROM {service}.inbox"
            before = session.fetchval(inbox)
            load = Background(paced_registrations, platform, Families(seed=2101).registrations(FAMILIES), 5)
            wait_until(lambda: session.fetchval(inbox) > before)  # cut in the middle of the flow
        finally:
            session.close()
        for forwarder in forwarders:
            forwarder.cut()
        cut_at = time.monotonic()
        held = sum(forwarder.open_connections() for forwarder in forwarders)
        answers: list[tuple[bool | None, float]] = []  # /readyz while cut: its answer, and how long it took

        def not_ready() -> float | bool:
            began = time.monotonic()
            answers.append((platform.ready(service), time.monotonic() - began))
            return answers[-1][0] is False and time.monotonic() - cut_at

        not_ready_in = wait_until(not_ready, timeout=PARTITION_S)
        time.sleep(max(0.0, PARTITION_S - (time.monotonic() - cut_at)))
        assert platform.ready(service) is False, "still cut off"
        for forwarder in forwarders:
            forwarder.restore()
        started = time.monotonic()
        wait_until(lambda: platform.ready(service), timeout=240)
        ready_in = time.monotonic() - started
        households = load.join()
        visits = record_visits(platform, households)
        findings, recovered = settle(platform, households, visits, started=started)
        same_process = platform.processes[service] is process and process.poll() is None
        cut = "PostgreSQL and Kafka" if broker_forwarder is not None else "PostgreSQL"
        outcome = record(f"eligibility partitioned from {cut} {PARTITION_S} s", offered(households, visits),
                         f"{held} connections silenced, new ones held", findings, recovered,
                         note=f"not ready {not_ready_in:.0f} s into the cut ({len(answers)} probes, slowest"
                              f" {max(t for _, t in answers):.1f} s), ready {ready_in:.0f} s after it;"
                              f" {'same process' if same_process else 'RESTARTED'}")
        assert_clean(outcome)
        assert same_process, "recovered without a restart"
    finally:
        platform.reroute(service, own)
        database.stop()


# --- what comes in --------------------------------------------------------------------------------

def test_poison_oversized_and_newer_version_records_among_the_input(fault_platform: FaultPlatform):
    platform = fault_platform
    households = register(platform, Families(seed=1801).registrations(FAMILIES))
    homes = {uuid.UUID(h) for h in households}
    original = wait_until(lambda: [r for r in asyncio.run(read_topics(platform.kafka_bootstrap, [HOUSEHOLD.name],
                                                                      homes)).get(HOUSEHOLD.name, [])
                                   if r.get("type") == "household.registered"])[0]
    # A newer compatible version of a registration, of a family the registry never sent: optional
    # fields this reader does not know, at every level. Its consumers must apply it, not letter it.
    text = json.dumps({k: v for k, v in original.items() if not k.startswith("_")})
    newcomer = str(uuid.uuid4())
    text = text.replace(original["_key"], newcomer)
    for member in original["data"].get("members", []):
        if member.get("member_id"):
            text = text.replace(member["member_id"], str(uuid.uuid4()))
    newer = json.loads(text) | {"id": str(uuid.uuid4()), "trace_parent": "00-abc-def-01"}
    newer["data"]["registered_by_app"] = "v9.1"
    key = original["_key"].encode()
    poison = b"\x00not json at all"
    oversized = json.dumps({**newer, "id": str(uuid.uuid4()), "type": "household.registered",
                            "data": {**newer["data"], "members": "x" * 300_000}}).encode()

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, max_request_size=2_000_000)
        await producer.start()
        try:
            for value in (poison, oversized):
                await producer.send_and_wait(HOUSEHOLD.name, value, key=key)
            await producer.send_and_wait(HOUSEHOLD.name, json.dumps(newer).encode(), key=newcomer.encode())
        finally:
            await producer.stop()

    started = time.monotonic()
    asyncio.run(produce())
    households += register(platform, Families(seed=1802).registrations(FAMILIES // 2))
    visits = record_visits(platform, households)
    findings, recovered = settle(platform, households, visits, started=started)
    # the poison and the oversized record, dead-lettered by each of the topic's three consumers
    outcome = record("poison, oversized and newer-version records", offered(households, visits) + 3,
                     "3 records produced into ejsika.household", findings, recovered, expected_dead_letters=6)
    assert_clean(outcome)
    for service in ("monitoring", "eligibility", "notifications"):
        assert applied_by(platform, service, "inbox", "event_id", [newer["id"]]) == 1, \
            f"{service} applied the newer version"


# --- the agency's receiver ------------------------------------------------------------------------

def test_agency_receiver_down_then_slow_then_back(fault_platform: FaultPlatform):
    platform = fault_platform
    receiver = platform.receiver
    receiver.mode = "down"
    households = register(platform, Families(seed=1901).registrations(FAMILIES))
    time.sleep(60)
    receiver.mode = "slow"
    households += register(platform, Families(seed=1902).registrations(FAMILIES // 2))
    time.sleep(30)
    receiver.mode = "up"
    started = time.monotonic()
    visits = record_visits(platform, households)
    findings, recovered = settle(platform, households, visits, started=started, timeout=400)
    assert_clean(record("agency receiver down 60 s, slow 30 s, back", offered(households, visits),
                        f"{receiver.refused} webhook attempts refused, then {receiver.slow_s:.0f} s answers",
                        findings, recovered))
    assert receiver.refused > 0, "the receiver was asked while it was down"


# --- a burst --------------------------------------------------------------------------------------

NOMINAL_PER_S = 4  # registrations a second, the pace of the other scenarios' load


def test_a_burst_ten_times_the_nominal_rate_for_a_minute(fault_platform: FaultPlatform):
    platform = fault_platform
    rss: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for name, mb in platform.rss_mb().items():
                rss[name] = max(rss.get(name, 0.0), mb)
            time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    families = Families(seed=2001).registrations(NOMINAL_PER_S * 10 * 60)
    households = paced_registrations(platform, families, NOMINAL_PER_S * 10)
    started = time.monotonic()
    try:
        findings, recovered = settle(platform, households, [], started=started, timeout=600)
    finally:
        done.set()
        sampler.join(5)
    alive = {name: proc.poll() is None for name, proc in platform.processes.items()}
    peak = max(rss.values())
    outcome = record(f"burst {NOMINAL_PER_S * 10}/s for 60 s", len(households), "10x the nominal rate",
                     findings, recovered, note=f"peak RSS {peak:.0f} MB ({max(rss, key=rss.get)})")
    assert_clean(outcome)
    assert all(alive.values()), alive
    assert peak < 1500, rss  # bounded: batches, not the backlog, are held in memory
