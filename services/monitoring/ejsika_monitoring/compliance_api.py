"""HTTP: a household's verification of commitments, period by period, for staff and auditors."""

from __future__ import annotations

import json
from datetime import date, datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from ejsika_contracts import MemberCompliance
from ejsika_runtime import pages
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.service import Service

COMPLIANCE_FIELDS = ("compliance_results.result", "compliance_results.members")


class ComplianceOut(BaseModel):
    programme: str
    period_start: date
    period_end: date
    result: str
    members: list[MemberCompliance]
    revision: int
    published_at: datetime


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["compliance"])

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
