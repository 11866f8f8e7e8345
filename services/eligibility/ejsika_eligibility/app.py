"""Composition root of eligibility."""

from pathlib import Path

from ejsika_contracts import ELIGIBILITY, HOUSEHOLD, HouseholdRegistered, HouseholdRegisteredV2, HouseholdUpdated
from ejsika_runtime import scopes
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings

from . import api
from .assessments import on_registered


class EligibilitySettings(Settings):
    http_port: int = 8003



settings = EligibilitySettings()
service = Service("eligibility", settings, Path(__file__).parent / "migrations")
service.consumes(HOUSEHOLD, {HouseholdRegistered: on_registered, HouseholdRegisteredV2: on_registered,
                             HouseholdUpdated: lambda uow, events: scopes.follow_updates(uow.conn, events)})
service.emits(ELIGIBILITY)
service.router.include_router(api.routes(service))
app = service.app()
