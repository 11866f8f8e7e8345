"""`GET /processing-records`: the record of processing of a household, in every service."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from fastapi import APIRouter

from . import pages, processing, scopes
from .access import Caller
from .auth import Role
from .problems import Problem

if TYPE_CHECKING:
    from .service import Service


def processing_routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["record of processing"])

    @router.get("/processing-records", response_model=pages.Page[processing.ProcessingRecord])
    async def processing_records(
        household_id: UUID,
        limit: int = pages.limit(100, 1000),
        cursor: str | None = pages.cursor(),
        caller: Caller = service.access.allow(Role.AUDITOR, Role.OPERATOR, purpose="accountability"),
    ) -> pages.Page[processing.ProcessingRecord]:
        """Who read, wrote or shared this household's personal data here, oldest first."""
        (after,) = pages.decode(cursor, int) or (0,)
        scope = await scopes.find(service.pool, household_id)
        # An auditor sees every trail, even of a household this service holds nothing else about.
        if Role.AUDITOR not in caller.principal.roles and (scope is None or not caller.covers(scope)):
            raise Problem(404, "no such household")
        page, last = await processing.trail(service.pool, [household_id], after, limit)
        return pages.Page[processing.ProcessingRecord](items=page, next_cursor=pages.encode(last) if last is not None else None)

    return router
