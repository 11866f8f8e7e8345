"""The four services as separate processes on the session's real Kafka and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ejsika_runtime.demo.launcher import new_webhook_secret, start_services, stop, subscribe_demo_agency, wait_ready
from ejsika_runtime.embedded import free_port


@dataclass
class Platform:
    env: dict[str, str]
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen]
    receiver_port: int
    log_dir: Path

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def received(self) -> list[dict]:
        return httpx.get(f"http://127.0.0.1:{self.receiver_port}/received", timeout=10).json()

    def kill(self, service: str) -> None:
        self.processes[service].kill()  # SIGKILL: no clean shutdown, no last commit
        self.processes[service].wait()

    def restart(self, service: str) -> None:
        self.processes.update(start_services(self.env, {service: self.ports[service]}, self.log_dir))
        wait_ready({service: self.ports[service]}, self.processes)


@pytest.fixture(scope="session")
def platform(database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    env = {**os.environ, "EJSIKA_DATABASE_URL": database_url, "EJSIKA_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "EJSIKA_LOG_LEVEL": "INFO", "EJSIKA_RELAY_POLL_INTERVAL_S": "0.5"}
    log_dir = tmp_path_factory.mktemp("service-logs")
    ports = {name: free_port() for name in ("registry", "monitoring", "eligibility", "notifications")}
    secret = new_webhook_secret()
    receiver_port = free_port()
    receiver = subprocess.Popen([sys.executable, "-m", "ejsika_runtime.demo.receiver", str(receiver_port), secret])
    processes = start_services(env, ports, log_dir)
    try:
        wait_ready(ports, processes, timeout=120)
        subscribe_demo_agency(f"http://127.0.0.1:{ports['notifications']}",
                              f"http://127.0.0.1:{receiver_port}/webhooks", secret)
        yield Platform(env, ports, processes, receiver_port, log_dir)
    finally:
        stop([*processes.values(), receiver])


def eventually(check, timeout: float = 60, interval: float = 0.5):
    """Poll `check` until it returns a truthy value; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout}s; last value: {value!r}")
        time.sleep(interval)
