"""Composition root of monitoring."""

from pathlib import Path

from ejsika_contracts import COMPLIANCE, EnrolmentChanged, HOUSEHOLD, HouseholdRegistered, HouseholdRegisteredV2, HouseholdUpdated, VISIT
from ejsika_runtime.programme_time import SQL_TODAY
from ejsika_runtime import scopes
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings

from . import api
from . import compliance, compliance_api, members
from .members import with_members
from . import visits_api
from . import caseload_api, schedules
from .domain import programmes
from .schedules import on_enrolment_changed, on_registered


class MonitoringSettings(Settings):
    http_port: int = 8002
    visit_batch_max: int = 500  # visits in one upload of an offline sync
    visit_clock_skew_s: float = 300  # how far ahead of the server a phone's clock may run
    programmes_file: Path | None = None  # visit intervals and commitments per programme (default: programmes.json)
    overdue_check_every_s: float = 60  # how often households past their due date are marked overdue
    overdue_check_batch: int = 5_000  # households marked per transaction



settings = MonitoringSettings()
programmes.use(settings.programmes_file)
service = Service("monitoring", settings, Path(__file__).parent / "migrations")
service.consumes(HOUSEHOLD, {HouseholdRegistered: with_members(on_registered),
                             HouseholdRegisteredV2: with_members(on_registered), **members.HANDLERS,
                             HouseholdUpdated: lambda uow, events: scopes.follow_updates(uow.conn, events),
                             EnrolmentChanged: on_enrolment_changed})
service.emits(VISIT)
service.emits(COMPLIANCE)
service.background(compliance.period_close_loop(lambda: service.pool, service.outbox))
# The visits first: a request is matched against the routes in order, and POST /visits is the hot path.
service.router.include_router(visits_api.routes(service, settings.visit_batch_max, settings.visit_clock_skew_s))
service.router.include_router(compliance_api.routes(service))
service.router.include_router(api.routes(service))
service.router.include_router(caseload_api.routes(service))
service.background(schedules.overdue_loop(lambda: service.pool, service.outbox, settings.overdue_check_every_s,
                                          settings.overdue_check_batch))
# Households overdue now, as the API counts them: past due on today's date in Asia/Jakarta, whatever the
# server's TimeZone (and whether or not the overdue check has marked them yet).
OVERDUE_COUNT_SQL = f"SELECT count(*) FROM households WHERE next_due < {SQL_TODAY}"
service.gauge("ejsika_visits_overdue", "Households with a visit past its due date", OVERDUE_COUNT_SQL)
app = service.app()
