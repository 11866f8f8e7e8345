"""HTTP entry points of monitoring: a household's visits and the overdue ones of a region."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query

from ejsika_runtime.service import Service


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["visits"])

    @router.get("/households/{household_id}/visits")
    async def visits(household_id: UUID) -> list[dict]:
        rows = await service.pool.fetch(
            "SELECT visit_id, kind, due_date, done_at FROM visits WHERE household_id = $1 ORDER BY due_date",
            household_id,
        )
        if not rows:
            raise HTTPException(404, "monitoring follows no such household")
        return [dict(r) for r in rows]

    @router.get("/visits/overdue")
    async def overdue(
        region_prefix: str = Query("36", pattern=r"^\d{2,10}$"),
        as_of: date | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict:
        rows = await service.pool.fetch(
            "SELECT v.visit_id, v.household_id, v.kind, v.due_date FROM visits v"
            " JOIN households h USING (household_id)"
            " WHERE v.done_at IS NULL AND v.due_date < $1 AND h.region_code LIKE $2 || '%'"
            " ORDER BY v.due_date LIMIT $3",
            as_of or date.today(),
            region_prefix,
            limit,
        )
        return {"as_of": str(as_of or date.today()), "visits": [dict(r) for r in rows]}

    return router
