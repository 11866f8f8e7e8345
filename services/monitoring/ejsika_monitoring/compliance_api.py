"""HTTP: a household's verification of commitments, period by period, for staff and auditors; and the
closing of a period on demand, for the programme's operator."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from ejsika_contracts import MemberCompliance
from ejsika_runtime import pages
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import FieldError, Problem, documented
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.service import Service

from .compliance import close_period as close_verification_period, commitments_for
from .domain import programmes
from .domain.compliance import period_of

COMPLIANCE_FIELDS = ("compliance_results.result", "compliance_results.members")


class ComplianceOut(BaseModel):
    programme: str
    period_start: date
    period_end: date
    result: str
    members: list[MemberCompliance]
    revision: int
    published_at: datetime


class PeriodClosingOut(BaseModel):
    programme: str
    period_start: date
    period_end: date
    closed_at: datetime = Field(description="When the period was closed (by this request or before it).")
    households_verified: int = Field(
        description="Households verified by this request: 0 when the period was closed already (nothing changed).")
    results: dict[str, int] = Field(description="The period's stored results by household result, e.g. "
                                                "{\"compliant\": 120, \"non_compliant\": 7, \"not_verifiable\": 3}.")


ProgrammePath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{1,31}$", description="The programme's code, e.g. jscm.")]


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["compliance"])

    @router.post(
        "/compliance/periods/{programme}/{period_start}/closing", status_code=202, response_model=PeriodClosingOut,
        responses={403: documented("An operator naming another programme than their own"),
                   404: documented("No such programme is monitored"),
                   409: documented("The period has not ended yet (its last day is not over in Asia/Jakarta)"),
                   422: documented("period_start is not the first day of one of the programme's periods")})
    async def close_period(
        programme: ProgrammePath,
        period_start: Annotated[date, Path(description="The period's first day, e.g. 2026-03-01 (monthly periods).")],
        caller: Caller = service.access.allow(Role.OPERATOR, Role.ADMIN,
                                              purpose="closing a programme's verification period"),
    ) -> PeriodClosingOut:
        """Close a verification period of the programme now, as the service does by itself the day after it
        ends: each active household verified once, its result stored and one `compliance.verified` published
        (escalations with it). Idempotent: a period closed already is answered as it is, nothing changes.
        The events follow through the outbox (hence 202)."""
        roles = caller.principal.roles
        if Role.OPERATOR in roles and Role.ADMIN not in roles and caller.principal.programme != programme:
            raise Problem(403, "an operator closes the periods of their own programme only")
        if programme not in programmes.PROGRAMMES:
            raise Problem(404, "no such programme is monitored")
        commitments = commitments_for(programme)
        period = period_of(period_start, commitments)
        if period.start != period_start:
            every = f"every {commitments.period_months} month(s)"
            raise Problem(422, "not the first day of one of the programme's periods", errors=[FieldError(
                field="period_start", rule="period_start", reason=f"a period of this programme starts on the first"
                                                                  f" day of {every}, counted from January")])
        if period.end >= programme_today():
            raise Problem(409, "the period has not ended yet: it can be closed from the day after its last day")
        verified = await close_verification_period(service.pool, service.outbox, programme, period)
        async with service.pool.acquire() as conn:
            closed_at = await conn.fetchval("SELECT closed_at FROM compliance_periods WHERE programme = $1"
                                            " AND period_start = $2", programme, period.start)
            results = {r["result"]: r["n"] for r in await conn.fetch(
                "SELECT result, count(*) AS n FROM compliance_results WHERE programme = $1 AND period_start = $2"
                " GROUP BY result ORDER BY result", programme, period.start)}
        return PeriodClosingOut(programme=programme, period_start=period.start, period_end=period.end,
                                closed_at=closed_at, households_verified=verified, results=results)

    @router.get("/households/{household_id:uuid}/compliance", response_model=pages.Page[ComplianceOut])
    async def compliance(
        household_id: UUID, limit: int = pages.limit(12, 120), cursor: str | None = pages.cursor(),
        caller: Caller = service.access.allow(Role.PENDAMPING, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR,
                                              purpose="verifying a family's commitments"),
    ) -> pages.Page[ComplianceOut]:
        """The household's results per period (verifikasi komitmen), the newest period first; each
        as last published (revision 2 and more: corrected by late visits)."""
        after = pages.decode(cursor, date, str)
        since = after[0] if after else None
        async with service.pool.acquire() as conn:
            await caller.household(conn, household_id)
            rows = await conn.fetch(
                "SELECT programme, period_start, period_end, result, members, revision, published_at"
                " FROM compliance_results WHERE household_id = $1"
                " AND ($2::date IS NULL OR (period_start, programme) < ($2::date, $3::text))"
                " ORDER BY period_start DESC, programme DESC LIMIT $4",
                household_id, since, after[1] if after else None,
                limit + 1)
            await caller.record(conn, "read", [household_id], COMPLIANCE_FIELDS)
        items = [ComplianceOut(**{**r, "members": json.loads(r["members"])}) for r in rows[:limit]]
        last = items[-1] if len(rows) > limit else None
        return pages.Page[ComplianceOut](
            items=items, next_cursor=pages.encode(last.period_start.isoformat(), last.programme) if last else None)

    return router
