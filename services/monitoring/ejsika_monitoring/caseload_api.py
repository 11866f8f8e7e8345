"""HTTP entry points of caseloads: a pendamping's work list (the active families they follow, with what is
due and what is overdue) and, for supervisors and operators, the active families nobody follows yet.

Who follows a family is the registry's (household.registered and household.updated name the pendamping;
the registry keeps the history of reassignments): monitoring reads it from `household_scope`.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ejsika_runtime import pages, scopes
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import documented
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.service import Service

from .api import REGION_PREFIX

CASELOAD_FIELDS = ("households.next_due", "households.overdue_since", "households.last_visit_at")
NOTHING_DUE = date(9999, 12, 31)  # sorts an active family with nothing due (yet) last
BAD_CURSOR = {422: documented("A parameter breaks its rule, or a cursor this list did not give")}


class CaseloadItem(BaseModel):
    household_id: UUID
    programme: str
    region_code: str
    pendamping_id: str | None
    next_due: date | None = Field(description="When the next visit is due (Asia/Jakarta); none if nothing is.")
    overdue: bool = Field(description="Its due date has passed (as of today in Asia/Jakarta).")
    overdue_since: date | None
    last_visit_at: datetime | None = Field(description="The captured_at of its latest visit.")


class UnassignedItem(BaseModel):
    household_id: UUID
    programme: str
    region_code: str
    next_due: date | None


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["caseloads"])

    @router.get("/caseload", response_model=pages.Page[CaseloadItem], responses=BAD_CURSOR)
    async def caseload(
        pendamping_id: str | None = Query(None, max_length=64, description=(
            "Whose caseload (supervisors, operators, auditors); a pendamping always gets their own.")),
        region_prefix: str | None = Query(None, pattern=REGION_PREFIX),
        limit: int = pages.limit(100, 1000), cursor: str | None = pages.cursor(),
        caller: Caller = service.access.allow(Role.PENDAMPING, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR,
                                              purpose="planning the visits of a caseload"),
    ) -> pages.Page[CaseloadItem]:
        """The active families of a caseload, what is due soonest first: the app's work list."""
        p = caller.principal
        if Role.PENDAMPING in p.roles and not ({Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR} & set(p.roles)):
            pendamping_id = p.subject
        position = pages.decode(cursor, date, UUID) or (None, None)
        covers, values = scopes.condition(p, "s", 7)
        today = programme_today()
        async with service.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT h.household_id, s.programme, s.region_code, s.pendamping_id, h.next_due, h.overdue_since,"
                "  h.last_visit_at, coalesce(h.next_due, $6::date) AS position"
                " FROM households h JOIN household_scope s USING (household_id)"
                " WHERE h.status = 'active' AND ($1::text IS NULL OR s.pendamping_id = $1)"
                "   AND ($2::text IS NULL OR starts_with(s.region_code, $2))"
                "   AND ($4::date IS NULL OR (coalesce(h.next_due, $6::date), h.household_id) > ($4::date, $5::uuid))"
                f"  AND {covers}"
                " ORDER BY coalesce(h.next_due, $6::date), h.household_id LIMIT $3",
                pendamping_id, region_prefix, limit + 1, *position, NOTHING_DUE, *values)
            page = rows[:limit]
            await caller.record(conn, "read", [r["household_id"] for r in page], CASELOAD_FIELDS)
        last = page[-1] if len(rows) > limit else None
        items = [CaseloadItem(**{k: v for k, v in r.items() if k != "position"},
                              overdue=r["next_due"] is not None and r["next_due"] < today) for r in page]
        return pages.Page[CaseloadItem](
            items=items, next_cursor=pages.encode(last["position"].isoformat(), last["household_id"]) if last else None)

    @router.get("/caseloads/unassigned", response_model=pages.Page[UnassignedItem], responses=BAD_CURSOR)
    async def unassigned(
        region_prefix: str | None = Query(None, pattern=REGION_PREFIX,
                                          description="A Kemendagri code prefix, e.g. 3672 (Kota Cilegon)."),
        limit: int = pages.limit(100, 1000), cursor: str | None = pages.cursor(),
        caller: Caller = service.access.allow(Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR,
                                              purpose="assigning families to pendamping"),
    ) -> pages.Page[UnassignedItem]:
        """Active families of the caller's area (supervisors) or programme (operators) without a pendamping."""
        after = pages.decode(cursor, UUID)
        covers, values = scopes.condition(caller.principal, "s", 4)
        async with service.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT h.household_id, s.programme, s.region_code, h.next_due"
                " FROM households h JOIN household_scope s USING (household_id)"
                " WHERE h.status = 'active' AND s.pendamping_id IS NULL"
                "   AND ($1::text IS NULL OR starts_with(s.region_code, $1))"
                f"  AND ($3::uuid IS NULL OR h.household_id > $3) AND {covers}"
                " ORDER BY h.household_id LIMIT $2",
                region_prefix, limit + 1, after[0] if after else None, *values)
            page = rows[:limit]
            await caller.record(conn, "read", [r["household_id"] for r in page], ("households.next_due",))
        last = page[-1] if len(rows) > limit else None
        return pages.Page[UnassignedItem](items=[UnassignedItem(**r) for r in page],
                                          next_cursor=pages.encode(last["household_id"]) if last else None)

    return router
