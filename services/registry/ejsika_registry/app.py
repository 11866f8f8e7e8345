"""Composition root of the registry."""

from pathlib import Path

from pydantic import Field, SecretStr

from ejsika_contracts import (AGENCY, ELIGIBILITY, HOUSEHOLD, VISIT, AgencyAnswered, EligibilityAssessed, QuotaAdmitted,
                              VisitRecorded)
from ejsika_runtime import processing
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.unit_of_work import UnitOfWork

from . import admissions, api, changes_api, enrolment_api, enrolments, households, imports_api, proposals, proposals_api
from . import duplicates, duplicates_api, search_api, visits
from . import agency_services
from .domain import programmes


class RegistrySettings(Settings):
    http_port: int = 8001
    # The key of the NIK's keyed hash (data-subject requests). Required: no default would be secret.
    nik_hash_key: SecretStr = Field(min_length=32)
    # The programmes served (domain.programmes): None for the programmes.json shipped with the registry.
    programmes_file: Path | None = None
    # Which changes wait for a supervisor's decision (domain.approval): None for the approval.json shipped.
    approval_rules: Path | None = None
    # Likely duplicates (duplicates.py): the least name similarity proposed, and households checked a batch.
    duplicate_name_similarity: float = Field(default=0.85, gt=0, le=1)
    duplicate_check_batch: int = Field(default=1000, ge=1, le=10_000)


async def record_status(uow: UnitOfWork, events: list[EligibilityAssessed]) -> None:
    await households.record_assessments(uow.conn, events)
    await enrolments.recommend_exits(uow.conn, events)  # never an exit: an operator confirms it
    await processing.record(uow.conn, processing.Processor("registry", "service"), "write",
                            [e.data.household_id for e in events],
                            ("status", "score", "rule_set", "enrolments.recommended_exit"),
                            f"event {EligibilityAssessed.event_type}", "recording a family's eligibility")


settings = RegistrySettings()
nik_key = settings.nik_hash_key.get_secret_value().encode()
programmes.use(settings.programmes_file)
proposals.use(settings.approval_rules)
service = Service("registry", settings, Path(__file__).parent / "migrations")
service.emits(HOUSEHOLD)
service.consumes(ELIGIBILITY, {EligibilityAssessed: record_status,
                              QuotaAdmitted: admissions.admit})  # an admitted candidate becomes active
service.consumes(VISIT, {VisitRecorded: visits.handler(nik_key)},  # a visit's household changes
                 gather_ms=visits.GATHER_MS)
service.consumes(AGENCY, {AgencyAnswered: agency_services.record_answers})  # the OPD programmes of a KPM
service.router.include_router(api.routes(service, nik_key))
service.router.include_router(changes_api.routes(service, nik_key))
service.router.include_router(enrolment_api.routes(service))
service.router.include_router(proposals_api.routes(service, nik_key))
service.router.include_router(imports_api.routes(service, nik_key))
service.router.include_router(search_api.routes(service, nik_key))
service.router.include_router(duplicates_api.routes(service))
service.router.include_router(agency_services.routes(service))
service.background(lambda: households.backfill_digests(service.pool, nik_key))
service.background(lambda: duplicates.watch(service.pool, duplicates.CheckPolicy(
    settings.duplicate_name_similarity, settings.duplicate_check_batch)))
service.gauge("ejsika_households_by_status", "Households in the registry by status",
              "SELECT status, count(*) FROM households GROUP BY status", label="status")
app = service.app()
