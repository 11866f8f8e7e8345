"""Composition root of the notifications service."""

from __future__ import annotations

import contextlib
import functools
import sys

from ejsika_contracts import ELIGIBILITY
from ejsika_runtime.db import ConnectionPolicy
from ejsika_runtime.service import Service

from . import api, handlers
from .crypto import SecretsKeysError
from .demo import MIGRATIONS, ensure_demo_subscription_on
from .egress import Egress
from .metrics import DeliveryMetrics
from .settings import NotificationsSettings
from .store import subscriptions
from .worker import DeliveryWorker


def compose(settings: NotificationsSettings, name: str = "notifications") -> Service:
    """The service; `name` is also its schema and consumer group (tests use their own).

    It does not start without EJSIKA_SECRETS_KEYS (SecretsKeysError), but composing it (e.g. to
    read its AsyncAPI document) needs no key.
    """
    service = Service(name, settings, MIGRATIONS)
    service.consumes(ELIGIBILITY, handlers.on_assessed)
    cipher = functools.cache(settings.secrets_cipher)
    egress = Egress(allow_private=settings.webhooks_allow_private)
    service.router.include_router(api.routes(service.access, lambda: service.pool, cipher_of=cipher, egress=egress))
    metrics = DeliveryMetrics(service.registry)

    start = service.running

    @contextlib.asynccontextmanager
    async def running():
        cipher()  # no usable keys, no start
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
    return service


settings = NotificationsSettings()
service = compose(settings)
app = service.app()


def main() -> None:
    try:
        settings.secrets_cipher()
    except SecretsKeysError as error:
        sys.exit(f"notifications cannot start: {error}")
    service.serve()
