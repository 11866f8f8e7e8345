"""The four services as separate processes on the session's real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ejsika_runtime.auth_tokens import Bearer
from ejsika_runtime.demo.launcher import (
    local_keys, new_webhook_secret, start_receiver, start_services, stop, subscribe_demo_agency, wait_ready,
)
from ejsika_runtime.embedded import free_port
from ejsika_runtime.testing import eventually  # noqa: F401 (the e2e tests import it from here)

# Who acts in each role in these tests (the demo people and clients of the realm).
ACTORS = {
    "pendamping": ("user", "pendamping-demo"),
    "supervisor": ("user", "supervisor-cilegon"),
    "operator": ("user", "operator-jscm"),
    "auditor": ("user", "auditor-demo"),
    "admin": ("user", "admin-demo"),
    "agency": ("client", "agency-dinas-pendidikan"),
}


@dataclass
class Platform:
    env: dict[str, str]
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen]
    receiver_port: int
    log_dir: Path
    tokens: Any  # the session's `tokens` fixture (root conftest.py)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per service: its own database URL
    _clients: dict = field(default_factory=dict)

    def auth(self, role: str | None = None, user: str | None = None) -> Bearer:
        kind, name = ("user", user) if user else ACTORS[role or "pendamping"]
        return Bearer(lambda: self.tokens.for_user(name) if kind == "user" else self.tokens.for_client(name))

    def client(self, service: str, role: str | None = None, user: str | None = None) -> httpx.Client:
        """A client of `service` acting in `role` (default: the demo pendamping) or as `user`."""
        key = (service, role, user)
        if key not in self._clients:
            self._clients[key] = httpx.Client(base_url=self.url(service), auth=self.auth(role, user), timeout=30)
        return self._clients[key]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def received(self) -> list[dict]:
        return httpx.get(f"http://127.0.0.1:{self.receiver_port}/received", timeout=10).json()

    def kill(self, service: str) -> None:
        self.processes[service].kill()  # SIGKILL: no clean shutdown, no last commit
        self.processes[service].wait()

    def restart(self, service: str) -> None:
        self.processes.update(start_services(self.env, {service: self.ports[service]}, self.log_dir,
                                             self.service_env))
        wait_ready({service: self.ports[service]}, self.processes)


@pytest.fixture(scope="session")
def platform(database_url: str, service_database_urls: dict[str, str], kafka_bootstrap: str, auth_issuer: str,
             tokens: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    # `env` names the administrator's URL (tests read every schema through it); each service gets
    # its own, as its own database role.
    env = {**os.environ, "EJSIKA_DATABASE_URL": database_url, "EJSIKA_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "EJSIKA_AUTH_ISSUER": auth_issuer, **local_keys(), "EJSIKA_WEBHOOKS_ALLOW_PRIVATE": "true",
           # the tests write faster than a caseworker app; the limit itself has its own test
           "EJSIKA_WRITE_RATE_PER_S": "1000", "EJSIKA_WRITE_BURST": "1000",
           "EJSIKA_LOG_LEVEL": "INFO", "EJSIKA_RELAY_POLL_INTERVAL_S": "0.5"}
    log_dir = tmp_path_factory.mktemp("service-logs")
    ports = {name: free_port() for name in ("registry", "monitoring", "eligibility", "notifications")}
    secret = new_webhook_secret()
    receiver_port = free_port()
    receiver = start_receiver(receiver_port, secret, env)
    service_env = {name: {"EJSIKA_DATABASE_URL": service_database_urls[name]} for name in ports}
    processes = start_services(env, ports, log_dir, service_env)
    try:
        wait_ready(ports, processes, timeout=120)
        platform = Platform(env, ports, processes, receiver_port, log_dir, tokens, service_env=service_env)
        subscribe_demo_agency(platform.url("notifications"), f"http://127.0.0.1:{receiver_port}/webhooks", secret,
                              platform.auth("admin"))
        yield platform
    finally:
        stop([*processes.values(), receiver])


def query(database_url: str, sql: str, *args) -> list[asyncpg.Record]:
    """Rows of one statement on the platform's database (as its administrator: every schema)."""
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def activate(platform: Platform, household_id: str, programme: str) -> None:
    """Admit a household to its programme as the operator, on the version just read (the registry may
    record an assessment in between: then read again). An eligible family may also be admitted by its
    programme's quota (eligibility's `quota.admitted`) meanwhile: then it is active already."""
    operator = platform.client("registry", role="operator")

    def admitted() -> bool:
        enrolments = operator.get(f"/households/{household_id}/enrolments", timeout=10)
        if any(e["programme"] == programme and e["status"] == "active" for e in enrolments.json()["enrolments"]):
            return True
        etag = enrolments.headers["etag"]
        answer = operator.post(f"/households/{household_id}/enrolments/{programme}", json={"status": "active"},
                               headers={"If-Match": etag}, timeout=10)
        assert answer.status_code in (200, 412), answer.text
        return answer.status_code == 200

    eventually(admitted, timeout=30)
