"""Composition root of monitoring."""

from pathlib import Path

from ejsika_contracts import HOUSEHOLD, VISIT
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings

from . import api
from .schedules import on_registered


class MonitoringSettings(Settings):
    http_port: int = 8002


settings = MonitoringSettings()
service = Service("monitoring", settings, Path(__file__).parent / "migrations")
service.consumes(HOUSEHOLD, on_registered)
service.emits(VISIT)
service.router.include_router(api.routes(service))
app = service.app()
