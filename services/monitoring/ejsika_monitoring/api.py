"""HTTP entry points of monitoring: a household's visits and the overdue ones the caller oversees."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.service import Service

STAFF = (Role.PENDAMPING, Role.SUPERVISOR, Role.OPERATOR)
VISIT_FIELDS = ("visits.kind", "visits.due_date", "visits.done_at")


class VisitOut(BaseModel):
    visit_id: UUID
    kind: str
    due_date: date
    done_at: datetime | None


class OverdueVisitOut(BaseModel):
    visit_id: UUID
    household_id: UUID
    kind: str
    due_date: date


class OverdueOut(BaseModel):
    as_of: date
    visits: list[OverdueVisitOut]


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["visits"])

    @router.get("/households/{household_id:uuid}/visits", response_model=list[VisitOut])
    async def visits(
        household_id: UUID,
        caller: Caller = service.access.allow(*STAFF, Role.AUDITOR, purpose="monitoring a family's visits"),
    ) -> list[VisitOut]:
        async with service.pool.acquire() as conn:
            await caller.household(conn, household_id)
            rows = await conn.fetch(
                "SELECT visit_id, kind, due_date, done_at FROM visits WHERE household_id = $1 ORDER BY due_date",
                household_id,
            )
            await caller.record(conn, "read", [household_id], VISIT_FIELDS)
        return [VisitOut(**r) for r in rows]

    @router.get("/visits/overdue", response_model=OverdueOut)
    async def overdue(
        region_prefix: str = Query("36", pattern=r"^\d{2,10}$"),
        as_of: date | None = None,
        limit: int = Query(100, ge=1, le=1000),
        caller: Caller = service.access.allow(*STAFF, Role.AUDITOR, purpose="following up overdue visits"),
    ) -> OverdueOut:
        """Overdue visits of the households in `region_prefix` that the caller oversees, as of
        `as_of` (default: today in the programme's time zone, Asia/Jakarta)."""
        p = caller.principal
        day = as_of or programme_today()
        async with service.pool.acquire() as conn:
            # The caller's scope is a filter of the query, as scopes.covers decides it for one household.
            rows = await conn.fetch(
                "SELECT v.visit_id, v.household_id, v.kind, v.due_date FROM visits v"
                " JOIN household_scope s USING (household_id)"
                " WHERE v.done_at IS NULL AND v.due_date < $1 AND s.region_code LIKE $2 || '%'"
                "   AND ($4 OR (s.programme = $5) OR (s.region_code LIKE $6 || '%') OR (s.pendamping_id = $7))"
                " ORDER BY v.due_date, v.visit_id LIMIT $3",
                day, region_prefix, limit,
                Role.AUDITOR in p.roles,
                p.programme if Role.OPERATOR in p.roles else None,
                p.area if Role.SUPERVISOR in p.roles else None,
                p.subject if Role.PENDAMPING in p.roles else None,
            )
            await caller.record(conn, "read", {r["household_id"] for r in rows}, ("visits.due_date",))
        return OverdueOut(as_of=day, visits=[OverdueVisitOut(**r) for r in rows])

    return router
