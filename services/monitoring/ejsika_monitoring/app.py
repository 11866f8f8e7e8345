"""Composition root of monitoring."""

from pathlib import Path

from ejsika_contracts import HOUSEHOLD, HouseholdRegistered, HouseholdRegisteredV2, HouseholdUpdated, VISIT
from ejsika_runtime.programme_time import SQL_TODAY
from ejsika_runtime import scopes
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings

from . import api
from .schedules import on_registered


class MonitoringSettings(Settings):
    http_port: int = 8002



settings = MonitoringSettings()
service = Service("monitoring", settings, Path(__file__).parent / "migrations")
service.consumes(HOUSEHOLD, {HouseholdRegistered: on_registered, HouseholdRegisteredV2: on_registered,
                             HouseholdUpdated: lambda uow, events: scopes.follow_updates(uow.conn, events)})
service.emits(VISIT)
service.router.include_router(api.routes(service))
# Overdue as the API counts it: past due on today's date in Asia/Jakarta, whatever the server's TimeZone.
OVERDUE_COUNT_SQL = f"SELECT count(*) FROM visits WHERE done_at IS NULL AND due_date < {SQL_TODAY}"
service.gauge("ejsika_visits_overdue", "Open visits past their due date", OVERDUE_COUNT_SQL)
app = service.app()
