"""The platform under faults: the four services as processes, an agency receiver, load, and the faults.

The faults are put at chosen states, read from PostgreSQL, instead of at moments: a relay held
off its lead so that the outbox fills; outbox rows locked so that the relay has published them
but cannot delete them; a service's outbox locked so that its consumer's transaction, inbox
claimed, waits inside the batch. Then `kill -9`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ejsika_runtime.auth_tokens import Bearer
from ejsika_runtime.demo.launcher import start_services, stop, wait_ready
from ejsika_runtime.testing import eventually

from .ledger import Receipt

SERVICES = ("registry", "monitoring", "eligibility", "notifications")


class Receiver:
    """The agency's system: a real HTTP server on this machine that verifies each signed webhook.

    `mode` is what it does now: "up" (204), "down" (503, nothing kept), "slow" (`slow_s`, then 204).
    A message is kept each time it is accepted, retries included: the ledger dedups by webhook-id.
    """

    def __init__(self, port: int, secret: str, slow_s: float = 3.0) -> None:
        self.port, self.mode, self.slow_s = port, "up", slow_s
        self.receipts: list[Receipt] = []
        self.refused = 0
        webhook = Webhook(secret)
        app = FastAPI()

        @app.post("/webhooks")
        async def receive(request: Request) -> Response:
            body = await request.body()
            if self.mode == "down":
                self.refused += 1
                return Response(status_code=503)
            if self.mode == "slow":
                await asyncio.sleep(self.slow_s)
            try:
                payload = webhook.verify(body, dict(request.headers))
            except WebhookVerificationError:
                return Response("bad signature", status_code=401)
            self.receipts.append(Receipt(request.headers["webhook-id"], payload))
            return Response(status_code=204)

        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the agency receiver did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@dataclass
class FaultPlatform:
    env: dict[str, str]
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen]
    log_dir: Path
    service_env: dict[str, dict[str, str]]
    database_url: str  # the administrator's: every schema
    kafka_bootstrap: str
    receiver: Any  # Receiver, or anything with `receipts`
    tokens: Any
    stack: Any = None  # the EmbeddedStack, for the broker and database faults
    agency: str = "dinas-pendidikan"
    _clients: dict = field(default_factory=dict)

    def client(self, service: str, user: str = "pendamping-demo") -> httpx.Client:
        key = (service, user)
        if key not in self._clients:
            auth = Bearer(lambda: self.tokens.for_user(user))
            self._clients[key] = httpx.Client(base_url=f"http://127.0.0.1:{self.ports[service]}", auth=auth,
                                              timeout=30)
        return self._clients[key]

    def kill(self, service: str) -> None:
        """kill -9: no clean shutdown, no last commit, no last offset commit."""
        self.processes[service].kill()
        self.processes[service].wait()

    def restart(self, service: str, timeout: float = 120) -> None:
        self.processes.update(start_services(self.env, {service: self.ports[service]}, self.log_dir, self.service_env))
        wait_ready({service: self.ports[service]}, self.processes, timeout=timeout)

    def reroute(self, service: str, env: dict[str, str], timeout: float = 120) -> None:
        """Stop `service` cleanly and start it again with `env` as its own (e.g. its database and
        broker through a forwarder): set-up of a scenario, not its fault."""
        stop([self.processes[service]])
        self.service_env[service] = env
        self.restart(service, timeout)

    def ready(self, service: str) -> bool | None:
        """The service's /readyz: True (200), False (503), None (no answer within 5 s)."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.ports[service]}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return None

    def pause(self, service: str) -> None:
        os.kill(self.processes[service].pid, signal.SIGSTOP)

    def resume(self, service: str) -> None:
        os.kill(self.processes[service].pid, signal.SIGCONT)

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each service process now."""
        sizes = {}
        for name, proc in self.processes.items():
            try:
                pages = int(Path(f"/proc/{proc.pid}/statm").read_text().split()[1])
            except (OSError, ValueError, IndexError):
                continue
            sizes[name] = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
        return sizes


# --- load ---------------------------------------------------------------------------------------

def retrying(call: Callable[[], httpx.Response], timeout: float = 180) -> httpx.Response:
    """As a caseworker app does: the same request (same ids) again while the service is away."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = call()
            if answer.status_code < 500 and answer.status_code != 429:
                return answer
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the platform did not take the request again in time")
        time.sleep(0.5)


def register(platform: FaultPlatform, registrations: list[dict], batch: int = 25) -> list[str]:
    """Register in batches through the registry's API; the household ids accepted."""
    accepted = []
    for start in range(0, len(registrations), batch):
        body = {"registrations": registrations[start:start + batch]}
        answer = retrying(lambda: platform.client("registry").post("/households/batch", json=body))
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert all(r["result"] in ("registered", "already_registered") for r in results), \
            [r["result"] for r in results]
        accepted += [r["household_id"] for r in results]
    return accepted


def visit(household_id: str) -> dict:
    return {"visit_id": str(uuid.uuid4()), "household_id": household_id,
            "captured_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "observations": {}, "notes": "kunjungan uji gangguan"}


def record_visits(platform: FaultPlatform, household_ids: list[str], timeout: float = 180) -> list[str]:
    """One visit to each household, uploaded as offline batches; a household monitoring does not know
    yet is tried again (it learns of it from the registry's events). The visit ids accepted."""
    waiting = [visit(h) for h in household_ids]
    accepted: list[str] = []
    deadline = time.monotonic() + timeout
    while waiting:
        answer = retrying(lambda: platform.client("monitoring").post("/visits/batch", json={"visits": waiting}))
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        accepted += [r["visit_id"] for r in results if r["result"] in ("recorded", "duplicate")]
        waiting = [v for v, r in zip(waiting, results) if r["result"] not in ("recorded", "duplicate")]
        if waiting:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(waiting)} visits never accepted")
            time.sleep(1)
    return accepted


# --- the database, held across the steps of a scenario ------------------------------------------

class Session:
    """One administrator connection kept open across a scenario's steps, on its own event loop."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.run(asyncpg.connect(database_url))

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def fetchval(self, sql: str, *args):  # type: ignore[no-untyped-def]
        return self.run(self.conn.fetchval(sql, *args))

    def execute(self, sql: str, *args) -> str:
        return self.run(self.conn.execute(sql, *args))

    def close(self) -> None:
        try:
            self.run(self.conn.close(timeout=5))
        except Exception:
            pass
        self.loop.close()


def relay_lock(schema: str) -> int:
    return zlib.crc32(f"relay:{schema}".encode())  # as ejsika_runtime.relay takes it


def take_relay_lead(session: Session, schema: str) -> None:
    """Hold `schema`'s relay lock so that its relay only waits: its outbox fills and nothing is
    published. The relay's leader connection is cut (the relay reconnects as a follower)."""
    lock = relay_lock(schema)
    session.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = 0"
        " AND objid = $1::bigint::oid AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND pid <> pg_backend_pid()", lock)
    session.execute("SELECT pg_advisory_lock($1)", lock)


def release_relay_lead(session: Session, schema: str) -> None:
    session.execute("SELECT pg_advisory_unlock($1)", relay_lock(schema))


def outbox_rows(session: Session, schema: str) -> int:
    return session.fetchval(f"SELECT count(*) FROM {schema}.outbox")


def wait_for_lock_wait(session: Session, query_start: str, application: str | None = None,
                       timeout: float = 60) -> None:
    """Until a backend of this database waits on a lock in a statement starting with `query_start`."""
    deadline = time.monotonic() + timeout
    while not session.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND ltrim(query) LIKE $1 AND ($2::text IS NULL OR application_name = $2)",
            query_start + "%", application):
        if time.monotonic() > deadline:
            raise AssertionError(f"no statement `{query_start}…` came to wait on the lock")
        time.sleep(0.1)


def wait_until(check: Callable[[], Any], timeout: float = 120, interval: float = 0.5) -> Any:
    """`eventually`, with the longer patience a fault's recovery needs."""
    return eventually(check, timeout, interval)
