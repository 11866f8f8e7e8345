"""HTTP entry points of monitoring: a household's visit schedule and the overdue households the caller oversees."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ejsika_runtime import pages, scopes
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import documented
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.service import Service

STAFF = (Role.PENDAMPING, Role.SUPERVISOR, Role.OPERATOR)
VISIT_FIELDS = ("visits.kind", "visits.due_date", "visits.done_at")
REGION_PREFIX = r"^\d{2,10}$"


class VisitOut(BaseModel):
    visit_id: UUID
    kind: str
    opens_on: date = Field(description="The first day of the period this due visit covers (Asia/Jakarta).")
    due_date: date
    status: Literal["due", "done", "cancelled"]
    done_at: datetime | None = Field(description="The captured_at of the visit that closed it.")
    cancelled_at: datetime | None = Field(description="When a suspension or exit cancelled it.")


class OverdueVisitOut(BaseModel):
    visit_id: UUID | None
    household_id: UUID
    region_code: str
    pendamping_id: str | None
    kind: str | None
    due_date: date
    overdue_since: date | None = Field(description="When the overdue check marked it (its due date); none yet.")


class OverduePage(pages.Page[OverdueVisitOut]):
    as_of: date


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["visits"])

    @router.get("/households/{household_id:uuid}/visits", response_model=list[VisitOut])
    async def visits(
        household_id: UUID,
        caller: Caller = service.access.allow(*STAFF, Role.AUDITOR, purpose="monitoring a family's visits"),
    ) -> list[VisitOut]:
        """The household's schedule: its due visits, done, cancelled and the one due now, by due date."""
        async with service.pool.acquire() as conn:
            await caller.household(conn, household_id)
            rows = await conn.fetch(
                "SELECT visit_id, kind, opens_on, due_date, done_at, cancelled_at,"
                "  CASE WHEN done_at IS NOT NULL THEN 'done' WHEN cancelled_at IS NOT NULL THEN 'cancelled'"
                "  ELSE 'due' END AS status"
                " FROM visits WHERE household_id = $1 ORDER BY due_date, scheduled_at",
                household_id,
            )
            await caller.record(conn, "read", [household_id], VISIT_FIELDS)
        return [VisitOut(**r) for r in rows]

    @router.get("/visits/overdue", response_model=OverduePage,
                responses={422: documented("A parameter breaks its rule, or a cursor this list did not give")})
    async def overdue(
        region_prefix: str = Query("36", pattern=REGION_PREFIX),
        as_of: date | None = None,
        limit: int = pages.limit(100, 1000),
        cursor: str | None = pages.cursor(),
        caller: Caller = service.access.allow(*STAFF, Role.AUDITOR, purpose="following up overdue visits"),
    ) -> OverduePage:
        """Households of `region_prefix` that the caller oversees with a visit due before `as_of` (default:
        today in the programme's time zone, Asia/Jakarta), oldest due date first."""
        day = as_of or programme_today()
        after = pages.decode(cursor, date, UUID)
        covers, values = scopes.condition(caller.principal, "s", 6)
        async with service.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT h.household_id, s.region_code, s.pendamping_id, h.next_due AS due_date, h.overdue_since,"
                "  v.visit_id, v.kind"
                " FROM households h JOIN household_scope s USING (household_id)"
                " LEFT JOIN visits v ON v.household_id = h.household_id AND v.done_at IS NULL"
                "   AND v.cancelled_at IS NULL"
                " WHERE h.next_due < $1 AND starts_with(s.region_code, $2)"
                f"  AND ($4::date IS NULL OR (h.next_due, h.household_id) > ($4::date, $5::uuid)) AND {covers}"
                " ORDER BY h.next_due, h.household_id LIMIT $3",
                day, region_prefix, limit + 1, *(after or (None, None)), *values,
            )
            page = rows[:limit]
            await caller.record(conn, "read", {r["household_id"] for r in page}, ("visits.due_date",))
        last = page[-1] if len(rows) > limit else None
        return OverduePage(as_of=day, items=[OverdueVisitOut(**r) for r in page],
                           next_cursor=pages.encode(last["due_date"].isoformat(), last["household_id"]) if last else None)

    return router
