"""The fault suite: the platform as processes on the session's real Kafka, PostgreSQL and Keycloak.

Its scenarios are marked `faults` and run only when asked for (`make faults`, i.e. `-m faults`):
they restart the session's broker and database, which other tests of the same session would not
survive, and the platform here is a second set of the services' consumer groups. `make test` runs
the representative kill scenario of tests/e2e instead, on the e2e platform.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ejsika_runtime.auth_tokens import Bearer
from ejsika_runtime.demo.launcher import local_keys, new_webhook_secret, start_services, stop, subscribe_demo_agency, \
    wait_ready
from ejsika_runtime.embedded import free_port

from . import report
from .ledger import Findings, run_check
from .partition import Blackhole
from .platform import SERVICES, FaultPlatform, Receiver

OUTCOMES: list[report.Outcome] = []
# the system temporary folder unless told: the table is a run's output, not a file of the repository
TABLE_FILE = Path(os.environ.get("EJSIKA_FAULTS_TABLE", Path(tempfile.gettempdir()) / "ejsika-faults-table.md"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the fault scenarios out of a run that did not choose them with `-m`."""
    if "faults" in (config.option.markexpr or ""):
        return
    chosen = [item for item in items if item.get_closest_marker("faults") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("faults")])
        items[:] = chosen


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not OUTCOMES:
        return
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    terminalreporter.write_sep("=", f"fault suite, {when}")
    terminalreporter.write_line(report.table(OUTCOMES))
    TABLE_FILE.write_text(f"Fault suite run of {when}:\n\n{report.markdown(OUTCOMES)}\n")
    terminalreporter.write_line(f"(as Markdown in {TABLE_FILE})")


@pytest.fixture(scope="session")
def broker_forwarder(infrastructure: Any) -> Iterator[Blackhole | None]:
    """A forwarder in front of a second listener of the session's broker (PROXIED), which the broker
    advertises at the forwarder's port: Kafka clients follow the advertised listeners, so a service
    bootstrapped at the forwarder reaches the broker only through it, and a cut partitions it.

    A KRaft broker's advertised listeners cannot change while it runs: the broker restarts once with
    the listener, before the platform starts. None when Kafka is external (EJSIKA_KAFKA_BOOTSTRAP).
    """
    kafka = infrastructure._kafka  # noqa: SLF001 - the session's own embedded broker
    if kafka is None:
        yield None
        return
    forwarder = Blackhole("127.0.0.1", free_port())
    write = kafka._write_config  # noqa: SLF001

    def with_proxied_listener() -> Path:
        props = write()
        extra = {"listeners=": f",PROXIED://127.0.0.1:{forwarder.port}",
                 "advertised.listeners=": f",PROXIED://{forwarder.address}",
                 "listener.security.protocol.map=": ",PROXIED:PLAINTEXT"}
        lines = props.read_text().splitlines()
        for start, added in extra.items():
            [at] = [n for n, line in enumerate(lines) if line.startswith(start)]
            lines[at] += added
        props.write_text("\n".join(lines) + "\n")
        return props

    kafka._write_config = with_proxied_listener  # noqa: SLF001 - kept for the broker's later restarts
    kafka.stop()
    kafka.start()
    forwarder.start()
    try:
        yield forwarder
    finally:
        forwarder.stop()


@pytest.fixture(scope="session")
def fault_platform(database_url: str, service_database_urls: dict[str, str], kafka_bootstrap: str,
                   auth_issuer: str, tokens: Any, infrastructure: Any, broker_forwarder: Blackhole | None,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultPlatform]:
    env = {**os.environ, "EJSIKA_DATABASE_URL": database_url, "EJSIKA_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "EJSIKA_AUTH_ISSUER": auth_issuer, **local_keys(), "EJSIKA_WEBHOOKS_ALLOW_PRIVATE": "true",
           "EJSIKA_WRITE_RATE_PER_S": "1000", "EJSIKA_WRITE_BURST": "1000",
           "EJSIKA_LOG_LEVEL": "INFO", "EJSIKA_RELAY_POLL_INTERVAL_S": "0.5"}
    log_dir = tmp_path_factory.mktemp("fault-service-logs")
    ports = {name: free_port() for name in SERVICES}
    secret = new_webhook_secret()
    receiver = Receiver(free_port(), secret)
    receiver.start()
    service_env = {name: {"EJSIKA_DATABASE_URL": service_database_urls[name]} for name in ports}
    processes = start_services(env, ports, log_dir, service_env)
    try:
        wait_ready(ports, processes, timeout=180)
        platform = FaultPlatform(env, ports, processes, log_dir, service_env, database_url, kafka_bootstrap,
                                 receiver, tokens, stack=infrastructure)
        subscribe_demo_agency(f"http://127.0.0.1:{ports['notifications']}", receiver.url, secret,
                              Bearer(lambda: tokens.for_user("admin-demo")))
        yield platform
    finally:
        stop(processes.values())
        receiver.stop()


def settle(platform: FaultPlatform, households: list[str], visits: list[str], *, timeout: float = 240,
           started: float | None = None) -> tuple[Findings, float]:
    """Wait until the ledger finds nothing lost (the platform recovered), then check it once more after
    a pause, so that late duplicates (a relay publishing again) are counted. Returns the final
    findings and the seconds from `started` (default: now) to recovery."""
    started = time.monotonic() if started is None else started
    deadline = time.monotonic() + timeout
    while True:
        findings = check(platform, households, visits)
        if not findings.lost or time.monotonic() > deadline:
            break
        time.sleep(2)
    recovered = time.monotonic() - started
    time.sleep(5)
    return check(platform, households, visits), recovered


def check(platform: FaultPlatform, households: list[str], visits: list[str]) -> Findings:
    return run_check(platform.database_url, platform.kafka_bootstrap, households, visits,
                     agency=platform.agency, url=platform.receiver.url, receipts=list(platform.receiver.receipts))


def record(scenario: str, offered: int, faults: str, findings: Findings, recovered: float | None,
           expected_dead_letters: int = 0, note: str = "") -> report.Outcome:
    outcome = report.Outcome(scenario, offered, faults, findings, expected_dead_letters, recovered, note)
    OUTCOMES.append(outcome)
    return outcome


def assert_clean(outcome: report.Outcome) -> None:
    findings = outcome.findings
    assert not findings.lost, findings.summary()
    assert not findings.duplicates, findings.summary()
    assert outcome.dead_letters == outcome.expected_dead_letters, findings.dead_letters
