"""The delivery worker: sends queued deliveries as signed webhook batches, with retries.

A dispatcher finds the subscriptions with deliveries due and starts one drain task for each;
a drain leases a batch, POSTs it, settles it, and repeats until nothing of its subscription is
due. A slow or failing agency therefore only ever holds its own drain (and one of the bounded
request slots), never the others. Several replicas share the queue through SKIP LOCKED leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

import asyncpg
import httpx

from ejsika_runtime.db import DEFAULT_POLICY, ConnectionPolicy, connect

from .crypto import SecretCipher, UndecryptableSecret
from .domain import webhooks
from .domain.retries import gives_up, retry_delay
from .egress import Egress, Refused
from .metrics import DeliveryMetrics
from .store import deliveries
from .store.deliveries import FailedAttempt, Target

log = logging.getLogger(__name__)

_METRICS_INTERVAL_S = 2.0
_PRUNE_INTERVAL_S = 300.0
# Floor between dispatch rounds, so rows briefly locked by another replica cannot spin the loop.
_MIN_IDLE_S = 0.02
_USER_AGENT = "e-JSiKa-notifications/1"


@dataclass(frozen=True)
class DeliveryPolicy:
    batch_size: int = 100
    concurrency: int = 16
    timeout_s: float = 10.0
    max_attempts: int = 15
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 3600.0
    lease_s: float = 60.0
    poll_interval_s: float = 1.0
    retention_s: float = 30 * 86400.0


def channel(schema: str) -> str:
    """The NOTIFY channel of the `deliveries_queued` trigger (migration 001)."""
    return f"{schema}_deliveries"


class DeliveryWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        policy: DeliveryPolicy,
        metrics: DeliveryMetrics,
        *,
        database_url: str,
        schema: str,
        cipher: SecretCipher,
        egress: Egress | None = None,
        client: httpx.AsyncClient | None = None,
        jitter: Callable[[], float] = random.random,
        connection_policy: ConnectionPolicy = DEFAULT_POLICY,
    ) -> None:
        """`egress` decides which addresses webhooks may reach (default: public ones only); a
        `client` given here replaces the guarded one it builds, and with it that protection.
        `connection_policy` (command timeout, keepalives) governs the listener's connection."""
        self.pool, self.policy, self.metrics = pool, policy, metrics
        self.database_url, self.schema = database_url, schema
        self.cipher, self.egress = cipher, egress or Egress()
        self._client, self._owns_client = client, client is None
        self._jitter = jitter
        self.connection_policy = connection_policy
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._wake = asyncio.Event()
        self._drains: dict[UUID, asyncio.Task] = {}
        self._listener: asyncpg.Connection | None = None
        self._reports_pending = False
        self._last_metrics = self._last_prune = 0.0

    async def run(self) -> None:
        """Forever: dispatch, then sleep until woken by NOTIFY, a finished drain or the next due time."""
        try:
            while True:
                self._wake.clear()
                try:
                    await self._listen()
                    idle = await self.dispatch()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # database away: wait, then try again
                    log.warning("delivery dispatch failed (%s); retrying", type(error).__name__)
                    await self._close_listener()
                    idle = self.policy.poll_interval_s
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle)
                await asyncio.sleep(_MIN_IDLE_S)
        finally:
            await self.stop()

    async def stop(self) -> None:
        drains = list(self._drains.values())
        for task in drains:
            task.cancel()
        await asyncio.gather(*drains, return_exceptions=True)
        await self._close_listener()
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def dispatch(self) -> float:
        """Start a drain for each subscription with deliveries due; return seconds to idle."""
        async with self.pool.acquire() as conn:
            for target in await deliveries.due_targets(conn, list(self._drains)):
                self._drains[target.subscription_id] = asyncio.create_task(
                    self._drain(target), name=f"deliver-{target.subscription_id}"
                )
            await self._housekeeping(conn)
            until_due = await deliveries.seconds_until_due(conn, list(self._drains))
        if until_due is None:
            return self.policy.poll_interval_s
        return min(until_due, self.policy.poll_interval_s)

    async def drain_all(self) -> None:
        """Dispatch until nothing is due or in flight (for tests and one-shot runs)."""
        while True:
            await self.dispatch()
            if not self._drains:
                return
            await asyncio.gather(*self._drains.values(), return_exceptions=True)

    async def _drain(self, target: Target) -> None:
        try:
            while await self._deliver_batch(target):
                pass
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the leased rows fall due again when their lease ends
            log.warning("delivery for subscription %s interrupted (%s)", target.subscription_id,
                        type(error).__name__)
        finally:
            self._drains.pop(target.subscription_id, None)
            self._wake.set()

    async def _deliver_batch(self, target: Target) -> bool:
        """Lease, POST and settle one batch; True if the subscription may have more to send now."""
        policy = self.policy
        async with self._slots:
            async with self.pool.acquire() as conn:
                batch = await deliveries.claim(conn, target.subscription_id, policy.batch_size, policy.lease_s)
            if not batch:
                return False
            ids = [d.id for d in batch]
            msg_id = webhooks.webhook_id(target.subscription_id, ids)
            payload = webhooks.body(target.event_type, [d.payload for d in batch])
            error = await self._post(target, msg_id, payload)
        subscription = str(target.subscription_id)
        async with self.pool.acquire() as conn:
            if error is None:
                async with conn.transaction():
                    lags = await deliveries.settle_delivered(conn, ids)
                    # every item of the acknowledged POST left, even one another worker settled first
                    await deliveries.record_shared(conn, target, batch)
                self.metrics.delivered.labels(target.agency).inc(len(lags))
                for lag in lags:
                    self.metrics.lag_seconds.observe(lag)
                log.info("subscription %s: delivered %d", subscription, len(lags), extra={"count": len(lags)})
                return True
            jitter = self._jitter()  # one draw per POST: the batch stays together for its retry
            attempts = [
                FailedAttempt(
                    d.id,
                    retry_delay(d.attempts + 1, base_s=policy.backoff_base_s, cap_s=policy.backoff_cap_s,
                                jitter=jitter),
                    gives_up(d.attempts + 1, policy.max_attempts),
                )
                for d in batch
            ]
            failed = await deliveries.settle_failed_attempts(conn, attempts, error)
        if failed:
            self.metrics.failed.labels(target.agency).inc(failed)
        log.warning("subscription %s: %d deliveries not accepted (%s), %d given up",
                    subscription, len(batch), error, failed, extra={"count": len(batch)})
        return False

    async def _post(self, target: Target, msg_id: str, payload: bytes) -> str | None:
        """POST one signed batch; None if the agency accepted it, else a short reason.

        The reason is a status code or an exception class only: response bodies and exception
        texts may echo the payload or the URL, and must not reach logs or the database. A
        destination the egress rules refuse (checked as the connection is made, on what DNS
        answers then) gives "refused: " and the rule; it is retried like any other failure.
        """
        started = time.perf_counter()
        try:
            self.egress.check_url(target.url)
            secret = self.cipher.decrypt(target.secret_encrypted)
            headers = webhooks.signed_headers(secret, msg_id, payload, datetime.now(timezone.utc))
            async with asyncio.timeout(self.policy.timeout_s):
                # Streamed and never read: an agency's reply body is of no use and may be large.
                async with self._http().stream(
                    "POST", target.url, content=payload, headers=headers, timeout=self.policy.timeout_s
                ) as response:
                    status = response.status_code
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.metrics.requests.labels(target.agency, "network_error").inc()
            return "Timeout"
        except Refused as refused:
            self.metrics.requests.labels(target.agency, "refused").inc()
            return f"refused: {refused.reason}"
        except UndecryptableSecret:
            self.metrics.requests.labels(target.agency, "secret_error").inc()
            return "secret not decryptable with the configured keys"
        except Exception as error:
            self.metrics.requests.labels(target.agency, "network_error").inc()
            return type(error).__name__
        finally:
            self.metrics.request_seconds.observe(time.perf_counter() - started)
        if 200 <= status < 300:
            self.metrics.requests.labels(target.agency, "ok").inc()
            return None
        self.metrics.requests.labels(target.agency, "http_error").inc()
        return f"HTTP {status}"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self.egress.client(
                limits=httpx.Limits(max_connections=self.policy.concurrency * 2),
                headers={"user-agent": _USER_AGENT},
            )
        return self._client

    async def _housekeeping(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self._last_metrics >= _METRICS_INTERVAL_S:
            self._last_metrics = now
            if await self._is_pending_reporter():
                self.metrics.report_pending(await deliveries.pending_counts(conn))
        if now - self._last_prune >= _PRUNE_INTERVAL_S:
            self._last_prune = now
            await deliveries.prune_delivered(conn, self.policy.retention_s)

    async def _is_pending_reporter(self) -> bool:
        """Only one replica reports the pending gauge (a count of the shared queue), so that
        dashboards may sum it over replicas. It is the one whose listener holds an advisory lock."""
        if not self._reports_pending and self._listener is not None:
            lock = zlib.crc32(f"deliveries-pending:{self.schema}".encode())
            self._reports_pending = await self._listener.fetchval("SELECT pg_try_advisory_lock($1)", lock)
        return self._reports_pending

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await connect(self.database_url, policy=self.connection_policy)
        await self._listener.add_listener(channel(self.schema), lambda *_: self._wake.set())

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if self._reports_pending:  # the lock goes with the connection: another replica reports now
            self._reports_pending = False
            self.metrics.stop_reporting_pending()
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)
