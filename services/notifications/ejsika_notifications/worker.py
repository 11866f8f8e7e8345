"""The delivery worker: sends webhook messages, signed, with retries, one agency never delaying another.

A dispatcher finds the subscriptions with something to send and starts one drain task for each; a
drain leases the subscription's next message (the oldest due for a retry, else a new one formed of
the notifications waiting), POSTs it, settles it, and repeats until nothing of its subscription is
due. So each subscription has one message in flight at most, and each agency at most
`agency_concurrency` (a slot of its own is taken before one of the `concurrency` shared slots):
an agency that hangs holds only its own slots until its timeout, never the others' (no head-of-line
blocking across subscriptions). Several replicas share the queue through SKIP LOCKED leases.

What an answer means (domain.retries): 2xx delivered; 4xx other than 408 and 429 failed at once
(the same message would be refused again), with the status as its reason; 410 Gone also disables
the subscription; anything else is retried on the back-off schedule, never sooner than a
`Retry-After` asks, until the last attempt fails it. A failed message is kept and can be redelivered
(`store.deliveries.redeliver`): the same members under the same `webhook-id`, so a receiver that
did get it after all can recognise it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

import asyncpg
import httpx

from ejsika_runtime.db import DEFAULT_POLICY, ConnectionPolicy, connect

from .crypto import SecretCipher, UndecryptableSecret
from .domain import webhooks
from .domain.retries import RetrySchedule, Verdict, retry_after_seconds, verdict
from .egress import Egress, Refused
from .metrics import DeliveryMetrics
from .store import deliveries
from .store.deliveries import Message, Target

log = logging.getLogger(__name__)

_METRICS_INTERVAL_S = 2.0
_PRUNE_INTERVAL_S = 300.0
# Floor between dispatch rounds, so rows briefly locked by another replica cannot spin the loop.
_MIN_IDLE_S = 0.02
_USER_AGENT = "e-JSiKa-notifications/1"


@dataclass(frozen=True)
class DeliveryPolicy:
    batch_size: int = 100  # notifications per webhook message
    concurrency: int = 64  # POSTs in flight per replica
    agency_concurrency: int = 4  # … of which one agency may hold at most this many
    timeout_s: float = 10.0
    max_attempts: int = 12
    backoff_base_s: float = 5.0
    backoff_factor: float = 3.0
    backoff_cap_s: float = 36_000.0
    retry_after_cap_s: float = 36_000.0
    lease_s: float = 60.0
    poll_interval_s: float = 1.0
    retention_s: float = 30 * 86400.0

    @property
    def schedule(self) -> RetrySchedule:
        return RetrySchedule(self.backoff_base_s, self.backoff_factor, self.backoff_cap_s, self.max_attempts,
                             self.retry_after_cap_s)


@dataclass(frozen=True)
class Answer:
    """What came back from one POST: the status (None: no answer) and a short reason if not 2xx.

    The reason is a status code or an exception class only: response bodies and exception texts
    may echo the payload or the URL, and must not reach logs or the database.
    """

    status: int | None
    reason: str | None = None
    retry_after: str | None = None


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
        self._agency_slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(policy.agency_concurrency))
        self._wake = asyncio.Event()
        self._drains: dict[UUID, asyncio.Task] = {}
        self._queued: dict[UUID, asyncio.Event] = {}  # a drain's: notifications were queued for it
        self._listener: asyncpg.Connection | None = None
        self._reports_pending = False
        self._last_metrics = self._last_prune = 0.0

    async def run(self) -> None:
        """Forever: dispatch, then sleep until woken by NOTIFY, a finished drain or the next due time."""
        # The client now, not at the first POST: building it (its TLS contexts) takes the event loop for
        # a good fraction of a second, which the first notifications and consumer batches would wait out.
        self._http()
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
        # A delivered message is settled beside the next one's lease and POST (one at a time): its
        # settling is bookkeeping, and waiting for it held back the notifications queued meanwhile.
        settling: asyncio.Task | None = None
        queued = self._queued[target.subscription_id] = asyncio.Event()
        try:
            while True:
                queued.clear()
                delivered = await self._deliver_next(target)
                if delivered is None:
                    if await self._more_queued(queued):
                        continue
                    return
                message, answer = delivered
                if settling is not None:
                    await settling
                    settling = None
                if verdict(answer.status) is Verdict.DELIVERED:
                    settling = asyncio.create_task(self._settle_apart(message, answer))
                    continue
                async with self.pool.acquire() as conn:
                    if not await self._settle(conn, message, answer):
                        return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the leased message falls due again when its lease ends
            log.warning("delivery for subscription %s interrupted (%s)", target.subscription_id,
                        type(error).__name__)
        finally:
            if settling is not None:
                await asyncio.gather(settling, return_exceptions=True)
            self._queued.pop(target.subscription_id, None)
            self._drains.pop(target.subscription_id, None)
            self._wake.set()

    async def _more_queued(self, queued: asyncio.Event) -> bool:
        """Whether notifications are queued for a drain with nothing left to send, within a poll
        interval. It waits for them (woken by the NOTIFY of their queueing, `_notified`) rather than
        ending: ended, each consumer batch would start a dispatch and a new drain. Without a listener
        (`drain_all`) nothing can wake it, and it ends at once."""
        if self._listener is None:
            return False
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(queued.wait(), self.policy.poll_interval_s)
        return queued.is_set()

    async def _deliver_next(self, target: Target) -> tuple[Message, Answer] | None:
        """Lease and POST the subscription's next message; None if it has nothing to send now."""
        policy = self.policy
        async with self._agency_slots[target.agency], self._slots:
            async with self.pool.acquire() as conn:
                message = await deliveries.next_message(conn, target.subscription_id, policy.batch_size,
                                                        policy.lease_s)
            if message is None:
                return None
            if message.attempts == 0:
                self.metrics.sent.labels(message.agency, "webhook").inc(len(message.members))
            return message, await self._post(message)

    async def _settle_apart(self, message: Message, answer: Answer) -> None:
        try:
            async with self.pool.acquire() as conn:
                await self._settle(conn, message, answer)
        except Exception as error:  # not settled: the message falls due again when its lease ends
            log.warning("delivery for subscription %s not settled (%s)", message.subscription_id,
                        type(error).__name__)

    async def _settle(self, conn: asyncpg.Connection, message: Message, answer: Answer) -> bool:
        agency, subscription = message.agency, message.subscription_id
        outcome = verdict(answer.status)
        if outcome is Verdict.DELIVERED:
            async with conn.transaction():
                settled = await deliveries.settle_delivered(conn, message.id, answer.status)
                # every item of the acknowledged POST left, even if another worker settled it first
                await deliveries.record_shared(conn, f"webhook {subscription}", agency, message.members)
            self.metrics.delivered.labels(agency).inc(settled.notifications)
            for lag in settled.lags_s:
                self.metrics.lag_seconds.observe(lag)
            if settled.message_s is not None:
                self.metrics.message_seconds.labels(agency).observe(settled.message_s)
            log.info("subscription %s: delivered %d", subscription, settled.notifications,
                     extra={"count": settled.notifications})
            return True
        attempts = message.attempts + 1
        schedule = self.policy.schedule
        final = outcome is not Verdict.RETRY or schedule.gives_up(attempts)
        retry_in = None if final else schedule.delay(attempts, self._jitter(), retry_after_seconds(answer.retry_after))
        async with conn.transaction():
            failed = await deliveries.settle_failed(conn, message.id, answer.reason or "", answer.status, retry_in)
            if outcome is Verdict.GONE:
                failed += await deliveries.disable(conn, subscription, "the endpoint answered 410 Gone")
        if final:
            reason = {Verdict.REJECTED: "rejected", Verdict.GONE: "gone"}.get(outcome, "exhausted")
            self.metrics.messages_failed.labels(agency, reason).inc()
        if failed:
            self.metrics.failed.labels(agency).inc(failed)
        log.warning("subscription %s: message %s not accepted (%s), %s", subscription, message.id, answer.reason,
                    "failed" if final else f"retry in {retry_in:.1f}s", extra={"count": len(message.members)})
        # After a 4xx the next message may well be accepted; after anything else, let it rest.
        return outcome is Verdict.REJECTED

    async def _post(self, message: Message) -> Answer:
        """POST one signed message. A destination the egress rules refuse (checked as the
        connection is made, on what DNS answers then) gives "refused: " and the rule; it is
        retried like any other failure."""
        agency = message.agency
        if not message.members:  # nothing left in it (pruned, say): nothing to send
            return Answer(204)
        started = time.perf_counter()
        try:
            self.egress.check_url(message.url)
            secrets = self._secrets(message)
            payload = webhooks.body([m.notification for m in message.members])
            headers = webhooks.signed_headers(secrets, webhooks.webhook_id(message.id), payload,
                                              datetime.now(timezone.utc))
            async with asyncio.timeout(self.policy.timeout_s):
                # Streamed and never read: an agency's reply body is of no use and may be large.
                async with self._http().stream(
                    "POST", message.url, content=payload, headers=headers, timeout=self.policy.timeout_s
                ) as response:
                    status, retry_after = response.status_code, response.headers.get("retry-after")
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.metrics.requests.labels(agency, "network_error").inc()
            return Answer(None, "Timeout")
        except Refused as refused:
            self.metrics.requests.labels(agency, "refused").inc()
            return Answer(None, f"refused: {refused.reason}")
        except UndecryptableSecret:
            self.metrics.requests.labels(agency, "secret_error").inc()
            return Answer(None, "secret not decryptable with the configured keys")
        except Exception as error:
            self.metrics.requests.labels(agency, "network_error").inc()
            return Answer(None, type(error).__name__)
        finally:
            self.metrics.request_seconds.observe(time.perf_counter() - started)
        if 200 <= status < 300:
            self.metrics.requests.labels(agency, "ok").inc()
            return Answer(status)
        self.metrics.requests.labels(agency, "http_error").inc()
        return Answer(status, f"HTTP {status}", retry_after)

    def _secrets(self, message: Message) -> list[str]:
        """The current secret (UndecryptableSecret if it cannot be read), then the rotated-out one
        while it is valid, unless it was encrypted under a key since retired: signing without it
        only shortens its grace period."""
        current, *previous = message.secrets_encrypted
        secrets = [self.cipher.decrypt(current)]
        for token in previous:
            with contextlib.suppress(UndecryptableSecret):
                secrets.append(self.cipher.decrypt(token))
        return secrets

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
        await self._listener.add_listener(channel(self.schema), lambda _c, _p, _ch, payload: self._notified(payload))

    def _notified(self, payload: str) -> None:
        """Notifications were queued for the subscriptions `payload` names (all of them: ''). Their
        drains go on; the dispatcher is woken unless each of them has a drain already: a drain takes
        what is queued for its subscription before it ends, and its end wakes the dispatcher. (At a
        few hundred events a second each consumer batch woke it, for two statements that found
        nothing to start, and then a new drain.)"""
        try:
            named = {UUID(text) for text in payload.split(",")} if payload else None
        except ValueError:
            named = None
        for subscription, queued in self._queued.items():
            if named is None or subscription in named:
                queued.set()
        if named is None or not named <= self._drains.keys():
            self._wake.set()

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if self._reports_pending:  # the lock goes with the connection: another replica reports now
            self._reports_pending = False
            self.metrics.stop_reporting_pending()
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)
