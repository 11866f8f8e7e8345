"""Half-open connections: every connection of the runtime has a command timeout and TCP keepalives,
so a statement that does not come back fails instead of hanging a batch or the relay (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from ejsika_contracts import VISIT, VisitScheduled, VisitScheduledData
from ejsika_runtime import db, relay as relay_module
from ejsika_runtime.consumer import INFRASTRUCTURE_ERRORS, BatchConsumer
from ejsika_runtime.db import ConnectionPolicy, create_pool, migrate
from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.relay import OutboxRelay
from ejsika_runtime.settings import Settings

pytestmark = pytest.mark.infra

NO_MIGRATIONS = Path(__file__).parent / "no-migrations"
QUICK = ConnectionPolicy(command_timeout_s=1.0, keepalives_idle_s=7, keepalives_interval_s=3, keepalives_count=2,
                         idle_in_transaction_timeout_s=1.0)


@pytest.fixture
async def pool(database_url):
    name = f"conn_{uuid.uuid4().hex[:6]}"
    pool = await create_pool(database_url, name, size=2, policy=QUICK)
    await migrate(pool, name, NO_MIGRATIONS)
    yield name, pool
    await pool.execute(f'DROP SCHEMA "{name}" CASCADE')
    await pool.close()


async def test_a_stuck_statement_is_cut_by_the_command_timeout_and_the_pool_goes_on(pool):
    _, pool = pool
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await pool.fetchval("SELECT pg_sleep(20)")
    assert time.monotonic() - started < 5
    assert await pool.fetchval("SELECT 1") == 1  # the statement was cancelled on the server too


async def test_the_pools_sessions_have_keepalives_on_both_ends_and_an_idle_in_transaction_timeout(pool):
    _, pool = pool
    async with pool.acquire() as conn:
        settings = dict(await conn.fetch(
            "SELECT name, setting FROM pg_settings WHERE name IN ('tcp_keepalives_idle', 'tcp_keepalives_interval',"
            " 'tcp_keepalives_count', 'tcp_user_timeout', 'idle_in_transaction_session_timeout')"))
        sock = conn._con._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 2
    assert settings == {"tcp_keepalives_idle": "7", "tcp_keepalives_interval": "3", "tcp_keepalives_count": "2",
                        "tcp_user_timeout": str(13_000), "idle_in_transaction_session_timeout": "1000"}


async def test_postgres_ends_a_session_left_idle_inside_a_transaction(database_url):
    conn = await db.connect(database_url, policy=QUICK)
    try:
        await conn.transaction().start()
        await conn.execute("SELECT 1")
        await asyncio.sleep(2.5)  # a client stuck with its transaction open: the server ends the session
        assert conn.is_closed()
        with pytest.raises(asyncpg.InterfaceError):
            await conn.execute("SELECT 1")
    finally:
        await conn.close()


async def test_a_relay_whose_statement_hangs_gives_up_and_leads_again(pool, database_url, monkeypatch):
    name, pool = pool
    connects = []

    async def counting_connect(*args, **kwargs):
        connects.append(kwargs.get("policy"))
        return await db.connect(*args, **kwargs)

    monkeypatch.setattr(relay_module, "connect", counting_connect)
    relay = OutboxRelay(database_url=database_url, schema=name, producer=None,  # nothing to publish
                        metrics=RuntimeMetrics(CollectorRegistry(), "test"), poll_interval_s=0.2,
                        connection_policy=QUICK)
    blocker = await db.connect(database_url, server_settings={"search_path": name})
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")  # the relay's SELECT now waits
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(8):
            while len(connects) < 3:
                await asyncio.sleep(0.1)
        assert connects[0] is QUICK
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await transaction.rollback()
        await blocker.close()


@pytest.mark.parametrize("ended", ["really", "as the server says it"])
async def test_a_batch_whose_session_was_ended_for_idling_in_its_transaction_is_rewound_not_dead_lettered(
        pool, ended):
    name, pool = pool

    async def handler(uow, events):
        if ended == "really":
            await asyncio.sleep(2.5)  # stuck with the transaction open: the server ends the session
            await uow.conn.execute("SELECT 1")
        else:
            raise asyncpg.IdleInTransactionSessionTimeoutError(
                "terminating connection due to idle-in-transaction timeout")

    consumer = BatchConsumer(topic=VISIT, group="test", handler=handler, pool_of=lambda: pool, outbox=Outbox(name),
                             metrics=RuntimeMetrics(CollectorRegistry(), "test"), max_attempts=1, retry_backoff_s=0)
    event = VisitScheduled(source="test", subject="h", correlation_id=uuid.uuid4(), data=VisitScheduledData(
        household_id=uuid.uuid4(), visit_id=uuid.uuid4(), kind="first_visit", due_date="2026-12-01"))
    value = event.to_bytes()
    record = ConsumerRecord(VISIT.name, 0, 1, 0, 0, b"k", value, None, len(value), len(value), [])
    with pytest.raises(INFRASTRUCTURE_ERRORS):
        await consumer.process([record])
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0, "nothing dead-lettered"


def test_the_policy_of_a_service_comes_from_its_settings(monkeypatch):
    monkeypatch.setenv("EJSIKA_DB_COMMAND_TIMEOUT_S", "5")
    monkeypatch.setenv("EJSIKA_DB_KEEPALIVES_IDLE_S", "11")
    monkeypatch.setenv("EJSIKA_DB_IDLE_IN_TRANSACTION_TIMEOUT_S", "0")
    policy = ConnectionPolicy.of(Settings())
    assert (policy.command_timeout_s, policy.keepalives_idle_s) == (5, 11)
    assert "idle_in_transaction_session_timeout" not in policy.server_settings()
    assert policy.connect_options({"search_path": "x"})["server_settings"]["search_path"] == "x"
