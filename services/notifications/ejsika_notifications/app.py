"""Composition root of the notifications service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI

from ejsika_contracts import ELIGIBILITY
from ejsika_runtime.service import Service

from . import api, demo, handlers
from .demo import MIGRATIONS, ensure_demo_subscription_on
from .metrics import DeliveryMetrics
from .settings import NotificationsSettings
from .worker import DeliveryWorker

settings = NotificationsSettings()
service = Service("notifications", settings, MIGRATIONS)
service.consumes(ELIGIBILITY, handlers.on_assessed)
service.router.include_router(api.routes(lambda: service.pool))
if settings.demo_api:
    service.router.include_router(demo.routes(lambda: service.pool))
delivery_metrics = DeliveryMetrics(service.registry)


@contextlib.asynccontextmanager
async def _delivering(_: FastAPI) -> AsyncIterator[None]:
    # FastAPI runs an included router's lifespan inside the app's, i.e. inside Service.running():
    # the pool exists and migrations are applied. `Service.background` needs a running loop, so
    # it cannot be called at import time.
    if settings.demo_webhook_url:
        async with service.pool.acquire() as conn:
            await ensure_demo_subscription_on(conn, settings.demo_webhook_url, secret=settings.demo_webhook_secret)
    worker = DeliveryWorker(
        service.pool,
        settings.delivery_policy(),
        delivery_metrics,
        database_url=settings.database_url,
        schema=service.name,
    )
    service.background(worker.run())
    yield


service.router.include_router(APIRouter(lifespan=_delivering))
app = service.app()


def main() -> None:
    service.serve()
