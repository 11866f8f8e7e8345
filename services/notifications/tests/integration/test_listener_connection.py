"""The delivery worker's listener connection (LISTEN, the pending-gauge lock) cannot hang half-open."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from ejsika_notifications.metrics import DeliveryMetrics
from ejsika_notifications.worker import DeliveryWorker
from ejsika_runtime.db import ConnectionPolicy

from .conftest import FAST, LOCAL

pytestmark = pytest.mark.infra

QUICK = ConnectionPolicy(command_timeout_s=1.0, keepalives_idle_s=7, keepalives_interval_s=3, keepalives_count=2)


async def test_the_listener_has_a_command_timeout_and_keepalives(db):
    worker = DeliveryWorker(db.pool, FAST, DeliveryMetrics(CollectorRegistry()), database_url=db.url,
                            schema=db.schema, cipher=db.cipher, egress=LOCAL, connection_policy=QUICK)
    db.workers.append(worker)
    await worker._listen()
    listener = worker._listener
    assert await listener.fetchval("SELECT setting FROM pg_settings WHERE name = 'tcp_keepalives_idle'") == "7"
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await listener.fetchval("SELECT pg_sleep(20)")
    assert time.monotonic() - started < 5
