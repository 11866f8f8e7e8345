"""Composition root of the notifications service."""

from __future__ import annotations

from ejsika_contracts import ELIGIBILITY
from ejsika_runtime.service import Service

from . import api, demo, handlers
from .demo import MIGRATIONS, ensure_demo_subscription_on
from .metrics import DeliveryMetrics
from .settings import NotificationsSettings
from .worker import DeliveryWorker


def compose(settings: NotificationsSettings, name: str = "notifications") -> Service:
    """The service; `name` is also its schema and consumer group (tests use their own)."""
    service = Service(name, settings, MIGRATIONS)
    service.consumes(ELIGIBILITY, handlers.on_assessed)
    service.router.include_router(api.routes(lambda: service.pool))
    if settings.demo_api:
        service.router.include_router(demo.routes(lambda: service.pool))
    metrics = DeliveryMetrics(service.registry)

    async def deliver() -> None:
        if settings.demo_webhook_url:
            async with service.pool.acquire() as conn:
                await ensure_demo_subscription_on(conn, settings.demo_webhook_url,
                                                  secret=settings.demo_webhook_secret)
        worker = DeliveryWorker(service.pool, settings.delivery_policy(), metrics,
                                database_url=settings.database_url, schema=service.name)
        await worker.run()

    service.background(deliver)
    return service


settings = NotificationsSettings()
service = compose(settings)
app = service.app()


def main() -> None:
    service.serve()
