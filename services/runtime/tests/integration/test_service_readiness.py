"""A running service on the real PostgreSQL and Kafka: what /readyz looks at, and what it logs.

Readiness is the database, the broker, the relay's recent success, running consumers and no
background loop waiting to restart; a failure inside the framework (here a handler whose database
is away) reaches the service's log instead of vanishing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import httpx
import pytest

from ejsika_contracts import VISIT, VisitScheduled, VisitScheduledData
from ejsika_runtime.kafka import new_producer
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.supervision import Supervisor
from ejsika_runtime.testing import ISSUER

pytestmark = pytest.mark.infra

NO_MIGRATIONS = Path(__file__).parent / "no-migrations"


class Gate:
    """The supervisor's back-off, held until the test opens it."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.waiting = asyncio.Event()

    async def sleep(self, _: float) -> None:
        self.waiting.set()
        await self.open.wait()


async def eventually(check, timeout_s: float = 30):
    async with asyncio.timeout(timeout_s):
        while not (result := await check()):
            await asyncio.sleep(0.2)
    return result


async def test_readiness_follows_the_relay_the_consumers_and_the_background_loops(
        database_url, kafka_bootstrap, caplog):
    name = f"ready_{uuid.uuid4().hex[:6]}"
    service = Service(name, Settings(database_url=database_url, kafka_bootstrap=kafka_bootstrap, auth_issuer=ISSUER,
                                     consumer_concurrency=1, consumer_retry_backoff_s=0.2,
                                     relay_poll_interval_s=0.2), NO_MIGRATIONS)
    gate = Gate()
    service._supervisor = Supervisor(service.metrics, sleep=gate.sleep)

    async def handler(uow, events):
        raise ConnectionResetError("the database went away")  # an infrastructure error: rewound, not dead-lettered

    service.consumes(VISIT, handler)
    calls = []

    async def deliver() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("start-up step failed")
        await asyncio.Event().wait()

    service.background(deliver)
    await publish_a_visit(kafka_bootstrap)

    app = service.app()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")

    async def readiness():
        answer = await client.get("/readyz")
        return answer.status_code, answer.json()

    try:
        with caplog.at_level(logging.WARNING):
            async with service.running():
                await gate.waiting.wait()  # the loop failed and waits for its restart
                status, checks = await readiness()
                assert status == 503 and checks["background"] is False

                gate.open.set()
                status, checks = await eventually(lambda: _ready(readiness))
                assert checks == {"database": True, "broker": True, "relay": True, "consumers": True,
                                  "background": True} and len(calls) == 2

                await eventually(lambda: _logged(caplog, "faststream", "ConnectionResetError"))

                await service.broker.subscribers[0].stop()
                status, checks = await readiness()
                assert status == 503 and checks["consumers"] is False
    finally:
        await client.aclose()
        await drop(database_url, name)

    restarts = [r for r in caplog.records if r.name == "ejsika_runtime.supervision"]
    assert len(restarts) == 1 and "start-up step failed" in str(restarts[0].exc_info[1])


async def _ready(readiness):
    status, checks = await readiness()
    return (status, checks) if status == 200 else None


async def _logged(caplog, logger: str, text: str) -> bool:
    return any(r.name == logger and r.levelno >= logging.ERROR and text in r.getMessage() for r in caplog.records)


async def publish_a_visit(bootstrap: str) -> None:
    household = uuid.uuid4()
    event = VisitScheduled(source="test", subject=str(household), correlation_id=uuid.uuid4(),
                           data=VisitScheduledData(household_id=household, visit_id=uuid.uuid4(),
                                                   kind="first_visit", due_date="2026-12-01"))
    producer = new_producer(bootstrap, "r1-test")
    await producer.start()
    try:
        await producer.send_and_wait(VISIT.name, event.to_bytes(), key=event.key())
    finally:
        await producer.stop()


async def drop(database_url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
