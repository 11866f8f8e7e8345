"""HTTP entry points to find households: a list by filters, and a search by NIK sent in a body (a NIK
never goes in a URL: URLs end up in access logs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ejsika_contracts import Contract
from ejsika_contracts.events.household import EnrolmentStatus
from ejsika_contracts.values import Nik, ProgrammeCode
from ejsika_runtime import pages
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.service import Service

from . import search
from .api import STAFF
from .domain.identifiers import nik_digest

RegionPrefix = Annotated[str, Field(pattern=r"^\d{2,10}$", description="Digits a village code starts with, e.g. 3672.")]
QualityFlag = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="e.g. nik_birth_date_mismatch")]


class EnrolmentSummary(BaseModel):
    programme: str
    status: EnrolmentStatus


class HouseholdSummary(BaseModel):
    """What a list shows of a household: codes and counts, no name, NIK or address."""

    id: UUID
    programme: str
    region_code: str
    status: str = Field(description="The eligibility status: registered, eligible or not_eligible.")
    version: int
    enrolments: list[EnrolmentSummary]
    member_count: int = Field(description="Active members.")
    quality_flags: list[str] = Field(description="The data-quality flags some active member carries, each once.")
    updated_at: datetime


class NikSearch(Contract):
    nik: Nik
    region_prefix: RegionPrefix | None = None
    programme: ProgrammeCode | None = None
    enrolment_status: EnrolmentStatus | None = None
    quality_flag: QualityFlag | None = None




def routes(service: Service, nik_key: bytes) -> APIRouter:
    router = APIRouter(tags=["households"])
    find_as = service.access.allow(*STAFF, Role.AUDITOR, purpose="finding the families of one's caseload, "
                                                                 "area or programme")

    async def answer(caller: Caller, filters: search.Filters, limit: int, cursor: str | None
                     ) -> pages.Page[HouseholdSummary]:
        after = (pages.decode(cursor, UUID) or (None,))[0]
        async with service.pool.acquire() as conn:
            items, last = await search.page(conn, caller.principal, filters, after, limit)
            if filters.nik_digest is not None:
                # A summary holds no personal data (codes and counts), so a list is not on the record
                # of processing; a NIK search is: it tells in which household that person lives.
                await caller.record(conn, "read", [i["id"] for i in items], ("members.nik",))
        return pages.Page[HouseholdSummary](items=items, next_cursor=pages.encode(str(last)) if last else None)

    @router.get("/households", response_model=pages.Page[HouseholdSummary])
    async def list_households(
        region_prefix: str | None = Query(None, pattern=r"^\d{2,10}$",
                                          description="Digits a village code starts with, e.g. 3672 (Kota Cilegon)."),
        programme: str | None = Query(None, pattern=r"^[a-z][a-z0-9-]{1,31}$"),
        enrolment_status: EnrolmentStatus | None = Query(
            None, description="An enrolment in this status: in `programme` when it is given, else in any."),
        quality_flag: str | None = Query(None, pattern=r"^[a-z][a-z0-9_]{0,63}$",
                                         description="An active member carries it, e.g. nik_birth_date_mismatch."),
        limit: int = pages.limit(), cursor: str | None = pages.cursor(), caller: Caller = find_as,
    ) -> pages.Page[HouseholdSummary]:
        """The households the caller may see that match every filter given, in a stable order (by id)."""
        return await answer(caller, search.Filters(region_prefix, programme, enrolment_status, quality_flag),
                            limit, cursor)

    @router.post("/households/search", response_model=pages.Page[HouseholdSummary])
    async def search_by_nik(
        body: NikSearch, limit: int = pages.limit(), cursor: str | None = pages.cursor(), caller: Caller = find_as,
    ) -> pages.Page[HouseholdSummary]:
        """The household the person with this NIK is an active member of, if the caller may see it,
        found by the NIK's keyed hash; the list's filters narrow it further."""
        filters = search.Filters(body.region_prefix, body.programme, body.enrolment_status, body.quality_flag,
                                 nik_digest(nik_key, body.nik))
        return await answer(caller, filters, limit, cursor)

    return router
