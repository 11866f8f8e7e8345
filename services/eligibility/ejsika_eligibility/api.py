"""HTTP entry points of eligibility: read the assessments of a household, with their explanation."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.service import Service


class AssessmentOut(BaseModel):
    event_id: UUID
    rule_set: str
    score: float
    eligible: bool
    components: list[str]
    explanation: list[dict[str, Any]]
    assessed_at: datetime


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["assessments"])

    @router.get("/households/{household_id:uuid}/assessments", response_model=list[AssessmentOut])
    async def assessments(
        household_id: UUID,
        caller: Caller = service.access.allow(Role.PENDAMPING, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR,
                                              purpose="explaining an eligibility decision"),
    ) -> list[AssessmentOut]:
        async with service.pool.acquire() as conn:
            await caller.household(conn, household_id)
            rows = await conn.fetch(
                "SELECT event_id, rule_set, score, eligible, components, explanation, assessed_at"
                " FROM assessments WHERE household_id = $1 ORDER BY assessed_at",
                household_id,
            )
            await caller.record(conn, "read", [household_id], ("assessments",))
        return [AssessmentOut(**{**dict(r), "explanation": json.loads(r["explanation"])}) for r in rows]

    return router
