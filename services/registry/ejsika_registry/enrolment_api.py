"""HTTP entry points of enrolment: a household's enrolments, their steps, and the exits waiting for an operator.

Operators (of the programme) and supervisors (of the area) admit, suspend, resume and re-enter families;
only an operator of the programme confirms an exit. Auditors and pendamping read.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from ejsika_contracts import Contract
from ejsika_runtime import pages, versions
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import COMMON_RESPONSES, FieldError, Problem, documented
from ejsika_runtime.service import Service

from . import enrolments
from .api import STAFF, EnrolmentOut
from .changes_api import answering, author_of, correlation
from .domain.enrolment import TransitionRefused, Wanted
from .domain.programmes import PROGRAMMES

PROGRAMME_CODE = r"^[a-z][a-z0-9-]{1,31}$"
ETAG_HEADER = {"ETag": {"description": "The household's version, for If-Match", "schema": {"type": "string"}}}


class EnrolmentChange(Contract):
    """The step asked of an enrolment: its new status, and for an exit its kind, reason and day."""

    status: Literal["candidate", "active", "suspended", "exited"] = Field(
        description="candidate (re-entry after an exit), active (admitted or resumed), suspended, exited.")
    exit_kind: Literal["mandiri", "alamiah", "paksa"] | None = Field(
        default=None, description="For an exit only: mandiri (declared able), alamiah (no eligible component "
                                  "left), paksa (non-compliance, or certified able).")
    reason: str | None = Field(default=None, min_length=1, max_length=500, description="Why; required for an exit.")
    effective_date: date | None = Field(
        default=None, description="The day it takes effect (Asia/Jakarta), not in the future; required for an "
                                  "exit, today otherwise.")

    def wanted(self) -> Wanted:
        return Wanted(self.status, self.exit_kind, self.reason, self.effective_date)


class RecommendedExitOut(BaseModel):
    exit_kind: Literal["mandiri", "alamiah", "paksa"]
    reason: str | None
    recommended_at: datetime


class EnrolmentView(EnrolmentOut):
    recommended_exit: RecommendedExitOut | None = Field(
        default=None, description="An exit an eligibility decision recommends, waiting for an operator to confirm it.")


class HouseholdEnrolmentsOut(BaseModel):
    household_id: UUID
    version: int = Field(description="The household's version, as in the ETag.")
    enrolments: list[EnrolmentView]


class RecommendedExitItem(BaseModel):
    household_id: UUID
    programme: str
    region_code: str
    status: Literal["active", "suspended"]
    version: int = Field(description="The household's version: the If-Match of the exit that confirms it.")
    recommended_exit: RecommendedExitOut


STEP_RESPONSES = {
    200: {"headers": ETAG_HEADER},
    **versions.RESPONSES,
    403: documented("Not the caller's programme, or an exit asked by anyone but an operator of the programme"),
    404: documented("Unknown household or programme, or not the caller's to know about"),
    409: documented("The step is not allowed from the enrolment's status (rule enrolment_transition), or the "
                    "family holds a place in a programme that excludes this one (rule programme_exclusive)"),
    422: COMMON_RESPONSES[422],
}


def _refused(refusal: TransitionRefused) -> Problem:
    return Problem(409 if refusal.conflict else 422, str(refusal),
                   errors=[FieldError(field=refusal.field, rule=refusal.rule, reason=str(refusal))])


def _position(cursor: str | None) -> tuple[datetime, UUID, str] | None:
    """Where a page of recommended exits starts: after (recommended_at, household_id, programme)."""
    return pages.decode(cursor, datetime, UUID, str)


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["enrolments"])
    read_as = service.access.allow(*STAFF, Role.AUDITOR, purpose="case management of a family")
    step_as = service.access.allow(Role.SUPERVISOR, Role.OPERATOR, purpose="enrolment of a family in a programme")
    review_as = service.access.allow(Role.OPERATOR, Role.AUDITOR,
                                     purpose="deciding the exit (graduation) of families from a programme")

    @router.get("/households/{household_id:uuid}/enrolments", response_model=HouseholdEnrolmentsOut,
                responses={200: {"headers": ETAG_HEADER}})
    async def household_enrolments(household_id: UUID, response: Response,
                                   caller: Caller = read_as) -> HouseholdEnrolmentsOut:
        """The household's enrolment in each programme, with any exit waiting for confirmation."""
        async with service.pool.acquire() as conn:
            await caller.household(conn, household_id)
            version = await conn.fetchval("SELECT version FROM households WHERE id = $1", household_id)
            if version is None:
                raise Problem(404, "no such household")
            found = await enrolments.of_household(conn, household_id)
            await caller.record(conn, "read", [household_id], enrolments.ENROLMENT_FIELDS)
        versions.set_version(response, version)
        return HouseholdEnrolmentsOut(household_id=household_id, version=version, enrolments=found)

    @router.post("/households/{household_id:uuid}/enrolments/{programme}", response_model=EnrolmentView,
                 responses=STEP_RESPONSES)
    async def change_enrolment(
        household_id: UUID, change: EnrolmentChange, response: Response,
        programme: str = Path(pattern=PROGRAMME_CODE, description="The programme's code, e.g. jscm."),
        caller: Caller = step_as,  # before If-Match: a role that may not do this hears 403 whatever it sends
        version: int = Depends(versions.expected_version), x_correlation_id: str | None = Depends(correlation),
    ) -> EnrolmentView:
        """Admit, suspend, resume, exit or re-enter the household in `programme`, based on the version read."""
        roles = caller.principal.roles
        with answering():
            async with service.transaction() as uow:
                await caller.household(uow.conn, household_id)
                if programme not in PROGRAMMES:
                    raise Problem(404, "no such programme")
                operator = Role.OPERATOR in roles and caller.principal.programme == programme
                if not operator and Role.SUPERVISOR not in roles:
                    raise Problem(403, "an operator changes the enrolments of their own programme only")
                if change.status == "exited" and not operator:
                    raise Problem(403, "only an operator of the programme confirms an exit")
                try:
                    enrolment, new_version = await enrolments.change(
                        uow, household_id, programme, version, change.wanted(),
                        author_of(caller, x_correlation_id, change.reason))
                except TransitionRefused as refusal:
                    raise _refused(refusal) from None
                await caller.record(uow.conn, "write", [household_id], enrolments.ENROLMENT_FIELDS)
        versions.set_version(response, new_version)
        return EnrolmentView(**enrolment)

    @router.get("/enrolments/recommended-exits", response_model=pages.Page[RecommendedExitItem],
                responses={403: documented("An operator asking for another programme than their own")})
    async def recommended_exits(
        programme: str | None = Query(None, pattern=PROGRAMME_CODE,
                                      description="Operators: their own programme, which is also the default."),
        region_prefix: str | None = Query(None, pattern=r"^\d{2,10}$",
                                          description="A Kemendagri code prefix, e.g. 3672 (Kota Cilegon)."),
        limit: int = pages.limit(), cursor: str | None = pages.cursor(), caller: Caller = review_as,
    ) -> pages.Page[RecommendedExitItem]:
        """Families no longer eligible whose exit waits for an operator, oldest recommendation first."""
        if Role.AUDITOR not in caller.principal.roles:
            own = caller.principal.programme
            if own is None or programme not in (None, own):
                raise Problem(403, "an operator sees the recommended exits of their own programme only")
            programme = own
        after = _position(cursor)
        async with service.pool.acquire() as conn:
            items, last = await enrolments.recommended(conn, programme, region_prefix, after, limit)
            await caller.record(conn, "read", [i["household_id"] for i in items], enrolments.RECOMMENDATION_FIELDS)
        next_cursor = pages.encode(last[0].isoformat(), str(last[1]), last[2]) if last else None
        return pages.Page[RecommendedExitItem](items=items, next_cursor=next_cursor)

    return router
