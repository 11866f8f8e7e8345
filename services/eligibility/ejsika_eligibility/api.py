"""HTTP entry points of eligibility: read the assessments of a household, with their explanation."""

from __future__ import annotations

import json
from uuid import UUID

from fastapi import APIRouter, HTTPException

from ejsika_runtime.service import Service


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["assessments"])

    @router.get("/households/{household_id}/assessments")
    async def assessments(household_id: UUID) -> list[dict]:
        rows = await service.pool.fetch(
            "SELECT event_id, rule_set, score, eligible, components, explanation, assessed_at"
            " FROM assessments WHERE household_id = $1 ORDER BY assessed_at",
            household_id,
        )
        if not rows:
            raise HTTPException(404, "no assessment of this household")
        return [{**dict(r), "explanation": json.loads(r["explanation"])} for r in rows]

    return router
