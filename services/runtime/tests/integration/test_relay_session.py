"""The relay's own connection on the real PostgreSQL: its writes do not wait for a disk flush, the
services' own transactions still do."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from ejsika_runtime.db import create_pool
from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.relay import OutboxRelay

pytestmark = pytest.mark.infra


async def test_the_relay_commits_without_waiting_for_the_disk_and_the_services_pool_still_waits(database_url):
    relay = OutboxRelay(database_url=database_url, schema="relay_session", producer=None,
                        metrics=RuntimeMetrics(CollectorRegistry(), "relay_session"))
    conn = await relay.connect()
    try:
        assert await conn.fetchval("SHOW synchronous_commit") == "off"
        assert await conn.fetchval("SHOW search_path") == "relay_session"
    finally:
        await conn.close()
    pool = await create_pool(database_url, "relay_session", size=1)
    try:
        # the transactions that write the outbox rows (and consumers' effects) stay durable at commit
        assert await pool.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await pool.close()
