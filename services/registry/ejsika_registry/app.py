"""Composition root of the registry."""

from pathlib import Path

from pydantic import Field, SecretStr

from ejsika_contracts import ELIGIBILITY, HOUSEHOLD, EligibilityAssessed
from ejsika_runtime import processing
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.unit_of_work import UnitOfWork

from . import api, changes_api, households


class RegistrySettings(Settings):
    http_port: int = 8001
    # The key of the NIK's keyed hash (data-subject requests). Required: no default would be secret.
    nik_hash_key: SecretStr = Field(min_length=32)


async def record_status(uow: UnitOfWork, events: list[EligibilityAssessed]) -> None:
    await households.record_assessments(uow.conn, events)
    await processing.record(uow.conn, processing.Processor("registry", "service"), "write",
                            [e.data.household_id for e in events], ("status", "score", "rule_set"),
                            f"event {EligibilityAssessed.event_type}", "recording a family's eligibility")


settings = RegistrySettings()
nik_key = settings.nik_hash_key.get_secret_value().encode()
service = Service("registry", settings, Path(__file__).parent / "migrations")
service.emits(HOUSEHOLD)
service.consumes(ELIGIBILITY, record_status)
service.router.include_router(api.routes(service, nik_key))
service.router.include_router(changes_api.routes(service, nik_key))
service.background(lambda: households.backfill_digests(service.pool, nik_key))
service.gauge("ejsika_households_by_status", "Households in the registry by status",
              "SELECT status, count(*) FROM households GROUP BY status", label="status")
app = service.app()
