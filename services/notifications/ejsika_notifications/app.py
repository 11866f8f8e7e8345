"""Composition root of the notifications service."""

from __future__ import annotations

import contextlib
import functools
import sys

from ejsika_contracts import AGENCY, COMPLIANCE, ELIGIBILITY, HOUSEHOLD, VISIT, VisitRecorded
from ejsika_runtime.db import ConnectionPolicy
from ejsika_runtime.service import Service

from . import answers_api, api, deliveries_api, digest, feed_api, figures_api, handlers
from .crypto import SecretsKeysError
from .demo import MIGRATIONS, ensure_demo_subscription_on
from .egress import Egress
from .pseudonyms import PseudonymKeyError
from .metrics import AnswerMetrics, DeliveryMetrics
from .settings import NotificationsSettings
from .store import subscriptions
from .worker import DeliveryWorker


VISIT_GATHER_MS = 40


def compose(settings: NotificationsSettings, name: str = "notifications") -> Service:
    """The service; `name` is also its schema and consumer group (tests use their own).

    It does not start without EJSIKA_SECRETS_KEYS (SecretsKeysError), but composing it (e.g. to
    read its AsyncAPI document) needs no key.
    """
    service = Service(name, settings, MIGRATIONS)
    references = functools.cache(settings.pseudonyms)
    notifier = handlers.Handlers(references)
    service.consumes(HOUSEHOLD, notifier.on_household)  # the family projection, enrolment, derived facts
    service.consumes(ELIGIBILITY, notifier.on_events)  # eligibility.assessed, quota.admitted
    # An agency waits on visits (the p95 under 1 s from the visit posted): the broker gathers
    # a few tens of milliseconds of them per fetch, so that a batch, its transaction and its offset
    # commit serve several visits rather than one (at 200 visits/s, one each cost more than the work).
    service.consumes(VISIT, {VisitRecorded: notifier.on_events}, gather_ms=VISIT_GATHER_MS)
    service.consumes(COMPLIANCE, notifier.on_events)  # compliance.verified, compliance.escalated
    cipher = functools.cache(settings.secrets_cipher)
    egress = Egress(allow_private=settings.webhooks_allow_private)
    service.router.include_router(api.routes(service.access, lambda: service.pool, cipher_of=cipher, egress=egress))
    metrics = DeliveryMetrics(service.registry)
    service.router.include_router(deliveries_api.routes(service.access, lambda: service.pool, cipher_of=cipher))
    service.router.include_router(feed_api.routes(service.access, lambda: service.pool, metrics))
    service.emits(AGENCY)  # the agencies' answers, agency.answered
    service.router.include_router(answers_api.routes(service, AnswerMetrics(service.registry)))
    service.router.include_router(figures_api.routes(service))

    start = service.running

    @contextlib.asynccontextmanager
    async def running():
        cipher()  # no usable keys, no start
        references()
        async with start() as started:
            yield started

    service.running = running  # type: ignore[method-assign]

    async def deliver() -> None:
        async with service.pool.acquire() as conn:
            await subscriptions.encrypt_legacy_secrets(conn, cipher())  # rows from before migration 004
            if settings.demo_webhook_url:
                await ensure_demo_subscription_on(conn, settings.demo_webhook_url, cipher=cipher(),
                                                  secret=settings.demo_webhook_secret)
        worker = DeliveryWorker(service.pool, settings.delivery_policy(), metrics,
                                database_url=settings.database_url, schema=service.name,
                                cipher=cipher(), egress=egress, connection_policy=ConnectionPolicy.of(settings))
        await worker.run()

    service.background(deliver)

    async def digests() -> None:  # the daily digests, and the derived facts of each day
        await digest.run(service.pool, notifier.notify, interval_s=settings.digest_interval_s)

    service.background(digests)
    return service


settings = NotificationsSettings()
service = compose(settings)
app = service.app()


def main() -> None:
    try:
        settings.secrets_cipher()
        settings.pseudonyms()
    except (SecretsKeysError, PseudonymKeyError) as error:
        sys.exit(f"notifications cannot start: {error}")
    service.serve()
