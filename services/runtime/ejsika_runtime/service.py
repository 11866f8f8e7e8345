"""The composition of one service: database, broker, consumers, relay and HTTP, in one process.

A service module declares what it consumes and emits and its HTTP routes; `Service.app()` is the
ASGI application with `/healthz`, `/readyz`, `/metrics` and `/asyncapi.json` added.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, Union

import asyncpg
import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.specification import AsyncAPI
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from pydantic import Field, SkipValidation

from ejsika_contracts import Event, Topic

from . import inbox, logs
from . import problems
from .access import Access, api_routes, policy_of, unguarded
from .limits import RequestLimits
from .processing_api import processing_routes
from .consumer import BatchConsumer, Handler, by_type
from .db import ConnectionPolicy, create_pool, migrate
from .kafka import broker_security, new_producer, producer_options
from .metrics import RuntimeMetrics, new_registry
from .outbox import Outbox
from .relay import OutboxRelay
from .settings import Settings
from .supervision import Supervisor
from .unit_of_work import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)
INBOX_PRUNING_INTERVAL_S = 3600.0
# What a consumer that gathers (`Service.consumes(..., gather_ms=...)`) lets the broker collect before it
# answers a fetch early: about forty events of the platform's size.
GATHER_BYTES = 64 * 1024
READINESS_CHECK_TIMEOUT_S = 2.0  # each of /readyz's database and broker checks


async def _records(message: KafkaMessage) -> list:
    # Hand the handler the raw records: it parses them itself so that an invalid one becomes a
    # dead letter instead of failing the whole batch in the framework.
    return list(message.raw_message)


class Service:
    def __init__(self, name: str, settings: Settings, migrations: Path) -> None:
        self.name, self.settings, self.migrations = name, settings, migrations
        self.registry = new_registry()
        self.metrics = RuntimeMetrics(self.registry, name)
        self.outbox = Outbox(name)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap,
            client_id=f"ejsika-{name}",
            middlewares=[KafkaPrometheusMiddleware(registry=self.registry, app_name=name)],
            # What fails in the framework (a handler, a commit, a fetch) is logged at ERROR through the
            # service's JSON lines; its per-message lines go at DEBUG, below the WARNING of its logger
            # (one JSON line per event comes from the consumer, not a framework access log).
            logger=_broker_logger(),
            log_level=logging.DEBUG,
            security=broker_security(settings),
            **producer_options(),
        )
        self.consumers: list[BatchConsumer] = []
        self.streamed_uploads: dict[str, int] = {}  # path -> most bytes: bodies its route reads as a stream
        self.router = APIRouter()
        self.access = Access(settings)
        self._pool: asyncpg.Pool | None = None
        self._loops: list[Callable[[], Awaitable[None]]] = []
        self._supervisor = Supervisor(self.metrics)
        self._relay: OutboxRelay | None = None
        self._app: FastAPI | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._pool

    def transaction(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(self.pool, self.outbox)

    def consumes(self, topic: Topic, handler: Handler | Mapping[type[Event], Handler], *,
                 gather_ms: int | None = None) -> None:
        """Apply batches of `topic`'s events with `handler`, inside one transaction per batch.

        `handler` takes every event of the topic, or is a mapping from event class to handler
        (the events of other classes are passed over).

        By default the broker answers a fetch with the first record there, and a batch is what came
        while the last one was applied: at a few hundred events a second that is one to three
        events, each batch paying a fetch, a transaction and an offset commit. With `gather_ms` the
        broker holds a fetch until GATHER_BYTES came or `gather_ms` passed: each event waits up to
        that much longer, and those costs are shared by the events of that time. For a consumer
        nobody waits on, or one whose wait is worth a few tens of milliseconds.
        """
        consumer = BatchConsumer(
            topic=topic,
            group=self.name,
            handler=by_type(handler) if isinstance(handler, Mapping) else handler,
            pool_of=lambda: self.pool,
            outbox=self.outbox,
            metrics=self.metrics,
            max_attempts=self.settings.consumer_max_attempts,
            retry_backoff_s=self.settings.consumer_retry_backoff_s,
            pause_max_s=self.settings.consumer_pause_max_s,
            systemic_ratio=self.settings.consumer_systemic_ratio,
            isolation_budget_s=self.settings.consumer_isolation_budget_s,
        )
        self.consumers.append(consumer)

        async def handle(body) -> None:
            # A batch that raises has paused already (BatchConsumer._rewind); NACK_ON_ERROR then
            # rewinds its partitions, so it is read again.
            await consumer.process(body)

        handle.__name__ = f"apply_{topic.name.replace('.', '_')}"
        # The annotation is what the AsyncAPI document says a message of the channel is: one
        # event, as the publisher declares it (a Kafka record is one event; batching is how this
        # consumer reads them, not part of the contract). At run time `body` is the batch of raw
        # records from `_records`: SkipValidation keeps FastStream from checking it against the
        # annotation, and the consumer parses each record itself.
        handle.__annotations__ = {"body": SkipValidation[_events_of(topic)]}
        # Several consumers of one group in one process split the partitions between them: while
        # one waits for its transaction to commit, another computes its batch. Each partition
        # still has one consumer, so the order per household holds.
        for index in range(self.settings.consumer_concurrency or topic.partitions):
            subscriber = self.broker.subscriber(
                topic.name,
                batch=True,
                group_id=self.name,
                auto_offset_reset="earliest",
                max_records=self.settings.consumer_batch_size,
                batch_timeout_ms=self.settings.consumer_batch_timeout_ms,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                # Members learn of a rebalance at their next heartbeat; with a consumer per
                # partition a restart is several rebalances, each ~3 s at the default interval.
                heartbeat_interval_ms=1000,
                **({} if gather_ms is None else {"fetch_max_wait_ms": gather_ms, "fetch_min_bytes": GATHER_BYTES}),
                decoder=_records,
                description=topic.description,
                include_in_schema=index == 0,
            )
            prompt(subscriber)
            subscriber(handle)

    def emits(self, topic: Topic) -> None:
        """Declare (for the AsyncAPI document) that this service publishes `topic` via its outbox."""
        self.broker.publisher(topic.name, schema=_events_of(topic), description=topic.description)

    def asyncapi(self) -> dict[str, Any]:
        app = FastStream(self.broker, specification=AsyncAPI(title=f"e-JSiKa {self.name}", version="1.0.0"))
        return app.schema.to_specification().to_jsonable()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        settings = self.settings
        policy = ConnectionPolicy.of(settings)
        self._pool = await create_pool(settings.database_url, self.name, size=settings.db_pool_size, policy=policy)

        def relay_producer():  # the relay makes a new one after a failed batch
            return new_producer(settings.kafka_bootstrap, f"ejsika-{self.name}-relay", settings)

        producer = relay_producer()
        try:
            await migrate(self._pool, self.name, self.migrations)
            await producer.start()
            relay = OutboxRelay(
                database_url=settings.database_url,
                schema=self.name,
                producer=producer,
                metrics=self.metrics,
                batch_size=settings.relay_batch_size,
                poll_interval_s=settings.relay_poll_interval_s,
                connection_policy=policy,
                producer_factory=relay_producer,
            )
            self._relay = relay
            self._start(relay.run, f"{self.name}-relay")
            await self.broker.start()
            if self.consumers:
                self._start(self._prune_inbox, f"{self.name}-inbox-pruning")
            for loop in self._loops:
                self._start(loop, f"{self.name}-{getattr(loop, '__name__', 'loop')}")
            yield self
        finally:
            await self.broker.stop()
            await self._supervisor.stop()
            await (self._relay.producer if self._relay is not None else producer).stop()
            self._relay = None
            await self._pool.close()
            self._pool = None

    async def _prune_inbox(self) -> None:
        """Forget, hourly, the applied event ids that can no longer be delivered again (`inbox.prune`)."""
        keep = timedelta(days=self.settings.inbox_keep_days)
        while True:
            async with self.pool.acquire() as conn:
                forgotten = await inbox.prune(conn, keep)
            if forgotten:
                log.info("inbox: forgot %d event ids applied over %d days ago", forgotten, keep.days)
            await asyncio.sleep(INBOX_PRUNING_INTERVAL_S)

    def background(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop()` (e.g. webhook delivery) while the service runs, once the pool and broker are up."""
        self._loops.append(loop)

    def gauge(self, name: str, description: str, sql: str, label: str | None = None, every_s: float = 15.0) -> None:
        """A business gauge refreshed from `sql` while the service runs.

        `sql` returns (label value, number) rows, or one number when `label` is None. Label values
        must be codes (a status, a region), never anything about a person.
        """
        gauge = Gauge(name, description, [label] if label else [], registry=self.registry)

        async def refresh() -> None:
            failing: str | None = None  # the error of the failures going on, logged when they start
            while True:
                try:
                    if label is None:
                        gauge.set(await self.pool.fetchval(sql))
                    else:
                        rows = await self.pool.fetch(sql)
                        gauge.clear()
                        for value, number in rows:
                            gauge.labels(value).set(number)
                    failing = None
                except Exception as error:  # a missed refresh keeps the last value
                    if type(error).__name__ != failing:
                        log.warning("gauge %s not refreshed; keeping its last value", name, exc_info=error)
                    failing = type(error).__name__
                await asyncio.sleep(every_s)

        refresh.__name__ = name
        self.background(refresh)

    def _start(self, loop: Callable[[], Awaitable[None]], name: str) -> None:
        self._supervisor.start(loop, name)  # restarted with back-off if it raises

    async def ready(self) -> dict[str, bool]:
        """What readiness looks at: the database and the broker answer, the relay published (or
        waited its turn) lately, every consumer runs, and no background loop waits to restart."""
        # Both asked at once, each within its own timeout: cut off, the answer takes one timeout, not two.
        database, broker = await asyncio.gather(
            _answers(lambda: self.pool.fetchval("SELECT true")),
            _answers(lambda: self.broker.ping(timeout=READINESS_CHECK_TIMEOUT_S)),
        )
        checks = {"database": database, "broker": broker}
        checks["relay"] = self._relay is not None and self._relay.healthy()
        checks["consumers"] = all(_consuming(subscriber) for subscriber in self.broker.subscribers)
        checks["background"] = not self._supervisor.down()
        return checks

    def app(self) -> FastAPI:
        if self._app is None:
            self._app = self._build_app()
        return self._app

    def _build_app(self) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI):
            async with self.running():
                yield

        app = FastAPI(title=f"e-JSiKa {self.name}", lifespan=lifespan)
        self.router.include_router(processing_routes(self))
        if missing := unguarded(self.router.routes):
            raise RuntimeError(f"{self.name}: routes without an access policy (use service.access.allow): {missing}")
        for route in api_routes(self.router.routes):  # the policy, documented with the route
            policy = policy_of(route)
            route.openapi_extra = {**(route.openapi_extra or {}), "x-roles": sorted(policy.roles),
                                   "x-purpose": policy.purpose}
        app.include_router(self.router, responses=problems.COMMON_RESPONSES)
        problems.install(app)
        app.add_middleware(RequestLimits, max_body_bytes=self.settings.max_body_bytes, streamed=self.streamed_uploads)

        @app.get("/healthz", include_in_schema=False)
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/readyz", include_in_schema=False)
        async def readyz() -> JSONResponse:
            checks = await self.ready()
            return JSONResponse(checks, status_code=200 if all(checks.values()) else 503)

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        @app.get("/asyncapi.json", include_in_schema=False)
        async def asyncapi() -> Response:
            return Response(json.dumps(self.asyncapi()), media_type="application/json")

        return app

    def serve(self) -> None:
        logs.configure(self.name, self.settings.log_level)
        app = self.app()
        # Batches allocate many short-lived objects; with the default thresholds the cyclic
        # collector runs every few hundred events and rescans everything loaded at start-up.
        # Freezing the start-up heap and collecting less often saves ~20 % per event.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        uvicorn.run(
            app,
            host=self.settings.http_host,
            port=self.settings.http_port,
            access_log=False,
            log_config=None,
            loop="uvloop",
            http="httptools",
            lifespan="on",
        )


class PromptBatchSubscriber(BatchSubscriber):
    """FastStream's batch subscriber without its nap after an empty fetch.

    `getmany` waits up to `batch_timeout_ms` for a record and answers as soon as one is there, so an
    idle loop does not spin; FastStream then slept `batch_timeout_ms` more before fetching again,
    and a record arriving during that nap waited for it (up to 100 ms a hop, on every hop of a
    chain). Under load nothing changes: what the background fetch brought while the last batch was
    applied comes in the next `getmany`. (The nap also made batches of what came during it; a
    consumer that wants that asks the broker to gather, `Service.consumes(..., gather_ms=...)`.)
    """

    __slots__ = ()

    async def get_msg(self, consumer: Any) -> tuple:
        messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
        return tuple(chain.from_iterable(messages.values()))


def prompt(subscriber: Any) -> None:
    """Make a batch subscriber of FastStream's a `PromptBatchSubscriber` (same slots, one method
    different). Fails at start-up, rather than silently napping again, if FastStream changes the class."""
    if type(subscriber) is not BatchSubscriber:
        raise TypeError(f"expected FastStream's BatchSubscriber, got {type(subscriber).__name__}")
    subscriber.__class__ = PromptBatchSubscriber


def _broker_logger() -> logging.Logger:
    logger = logging.getLogger("faststream")
    logger.setLevel(logging.WARNING)
    # FastStream gives its logger a plain handler of its own and stops propagation: its lines would
    # bypass the service's JSON lines and their masking of identifiers.
    logger.handlers.clear()
    logger.propagate = True
    return logger


async def _answers(check: Callable[[], Awaitable[Any]]) -> bool:
    """Whether `check` answers truly within READINESS_CHECK_TIMEOUT_S; a failure or no answer is False."""
    with contextlib.suppress(Exception):
        return bool(await asyncio.wait_for(check(), READINESS_CHECK_TIMEOUT_S))
    return False


def _consuming(subscriber: Any) -> bool:
    """A subscriber is started and its fetch loop alive (FastStream restarts one that crashed)."""
    return bool(subscriber.running) and any(not task.done() for task in getattr(subscriber, "tasks", ()))


def _events_of(topic: Topic) -> Any:
    """The schema of one message of `topic`: its event, or one of its events.

    A union is titled so that both sides of the channel refer to one schema by that name.
    """
    if len(topic.events) == 1:
        return topic.events[0]
    title = "".join(part.capitalize() for part in topic.name.replace("-", ".").split(".")) + "Event"
    return Annotated[Union[topic.events], Field(
        title=title, description="One of the topic's events, told apart by `type` and `dataversion`.",
    )]
