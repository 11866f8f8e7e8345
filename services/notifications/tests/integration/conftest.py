"""Integration helpers: a fresh notifications schema per test and a local webhook receiver.

`database_url` (and `kafka_bootstrap`) are the session fixtures of the repository's conftest.py.
The receivers listen on 127.0.0.1, so these tests allow private webhook destinations
(EJSIKA_WEBHOOKS_ALLOW_PRIVATE) unless a test says otherwise, and encrypt secrets with a key made
for the session (EJSIKA_SECRETS_KEYS).

The HTTP routes are guarded by the session's real Keycloak (`auth_issuer`, `tokens`): `api_client`
opens clients of them on the test's schema, sending the admin's token unless told otherwise.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from ejsika_contracts import Event
from ejsika_notifications import api, deliveries_api, feed_api
from ejsika_notifications.crypto import SecretCipher, new_key
from ejsika_notifications.demo import MIGRATIONS
from ejsika_notifications.domain.agencies import Agency
from ejsika_notifications.domain.subscriptions import Filter, new_secret
from ejsika_notifications.egress import Egress
from ejsika_notifications.handlers import Handlers
from ejsika_notifications.pseudonyms import Pseudonyms
from ejsika_notifications.metrics import DeliveryMetrics
from ejsika_notifications.store import subscriptions
from ejsika_notifications.worker import DeliveryPolicy, DeliveryWorker
from ejsika_runtime import problems
from ejsika_runtime.access import Access
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.settings import Settings
from ejsika_runtime.unit_of_work import UnitOfWork

FAST = DeliveryPolicy(batch_size=100, concurrency=4, timeout_s=2.0, max_attempts=5, backoff_base_s=0.05,
                      backoff_cap_s=0.2, lease_s=10.0, poll_interval_s=0.2)
SECRETS_KEYS = new_key()
CIPHER = SecretCipher.from_setting(SECRETS_KEYS)
PSEUDONYM_KEY = "test-pseudonym-key-" + uuid.uuid4().hex  # per session, as the launcher makes one
HANDLERS = Handlers(Pseudonyms(PSEUDONYM_KEY.encode()))
LOCAL = Egress(allow_private=True)  # the receivers are on 127.0.0.1
ADMIN_CLIENT = "ejsika-admin-cli"  # the realm's client with the admin role


@pytest.fixture(autouse=True)
def notifications_environment(monkeypatch):
    """What the launcher and the e2e tests set for the service, for settings read in these tests."""
    monkeypatch.setenv("EJSIKA_SECRETS_KEYS", SECRETS_KEYS)
    monkeypatch.setenv("EJSIKA_PSEUDONYM_KEY", PSEUDONYM_KEY)
    monkeypatch.setenv("EJSIKA_WEBHOOKS_ALLOW_PRIVATE", "true")


@dataclass
class Db:
    url: str
    schema: str
    pool: asyncpg.Pool
    workers: list[DeliveryWorker] = field(default_factory=list)
    cipher: SecretCipher = CIPHER
    metrics: DeliveryMetrics = field(default_factory=lambda: DeliveryMetrics(CollectorRegistry()))  # the feed's

    async def subscribe(self, agency: Agency, url: str, filter: Filter = Filter("36"),
                        secret: str | None = None) -> tuple[uuid.UUID, str]:
        secret = secret or new_secret()
        async with self.pool.acquire() as conn:
            await subscriptions.add_agency(conn, agency)
            record = await subscriptions.add_subscription(
                conn, agency=agency.code, event_type="eligibility.assessed", filter=filter, url=url,
                secret_encrypted=self.cipher.encrypt(secret))
        return record.id, secret

    async def consume(self, events: Sequence[Event]) -> None:
        """Apply a batch as the consumer would: the handler inside one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await HANDLERS.on_events(UnitOfWork(conn), list(events))

    async def deliveries(self, subscription_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT * FROM deliveries WHERE $1::uuid IS NULL OR subscription_id = $1 ORDER BY seq",
            subscription_id)

    def worker(self, policy: DeliveryPolicy = FAST, registry: CollectorRegistry | None = None, *,
               cipher: SecretCipher | None = None, egress: Egress = LOCAL,
               jitter: Callable[[], float] = lambda: 1.0) -> DeliveryWorker:
        """A worker whose retries wait the whole step of the schedule (no random draw), unless told."""
        worker = DeliveryWorker(self.pool, policy, DeliveryMetrics(registry or CollectorRegistry()),
                                database_url=self.url, schema=self.schema, cipher=cipher or self.cipher,
                                egress=egress, jitter=jitter)
        self.workers.append(worker)
        return worker


@pytest.fixture
async def db(database_url):
    schema = f"notifications_{uuid.uuid4().hex[:8]}"
    pool = await create_pool(database_url, schema, size=8)
    await migrate(pool, schema, MIGRATIONS)
    db = Db(database_url, schema, pool)
    yield db
    for worker in db.workers:
        await worker.stop()
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
async def api_client(db, auth_issuer, tokens):
    """`api_client(token=None, egress=LOCAL)`: a client of the notifications routes on the test's
    schema, as the service mounts them (problem documents included), its tokens verified against
    the session's Keycloak. It sends `token` (by default the admin client's) on every request
    that names no `authorization` header of its own."""
    opened: list[httpx.AsyncClient] = []

    def open_client(token: str | None = None, egress: Egress = LOCAL) -> httpx.AsyncClient:
        app = FastAPI()
        access = Access(Settings(auth_issuer=auth_issuer))  # one per client: a fresh write rate limit
        app.include_router(api.routes(access, lambda: db.pool, cipher_of=lambda: db.cipher, egress=egress))
        app.include_router(deliveries_api.routes(access, lambda: db.pool, cipher_of=lambda: db.cipher))
        app.include_router(feed_api.routes(access, lambda: db.pool, db.metrics))
        problems.install(app)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                   headers=bearer(token or tokens.for_client(ADMIN_CLIENT)))
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.aclose()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server: answers each POST with the next of `statuses`, then 200 (a
    non-2xx with `Retry-After: retry_after` when given)."""

    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    retry_after: str | None = None
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:] if h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = self.statuses.pop(0) if self.statuses else 200
            self.requests.append(Received(headers, body, status, time.monotonic()))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            extra = f"retry-after: {self.retry_after}\r\n" if self.retry_after and status >= 300 else ""
            writer.write(f"HTTP/1.1 {status} X\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receivers():
    started: list[Receiver] = []

    async def start(statuses: Sequence[int] = (), delay_s: float = 0.0, retry_after: str | None = None) -> Receiver:
        receiver = await Receiver(list(statuses), delay_s, retry_after=retry_after).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        await receiver.stop()


async def eventually(check, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)


@pytest.fixture
def wait_for():
    return eventually
