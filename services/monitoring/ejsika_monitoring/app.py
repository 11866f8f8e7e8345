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
service.gauge("ejsika_visits_overdue", "Open visits past their due date",
              "SELECT count(*) FROM visits WHERE done_at IS NULL AND due_date < current_date")
app = service.app()
