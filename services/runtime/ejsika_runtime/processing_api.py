"""`GET /processing-records`: the record of processing of a household, in every service."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from . import processing, scopes
from .access import Caller
from .auth import Role
from .problems import FieldError, Problem

if TYPE_CHECKING:
    from .service import Service


class ProcessingRecordsOut(BaseModel):
    items: list[processing.ProcessingRecord]
    next_cursor: str | None


def processing_routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["record of processing"])

    @router.get("/processing-records", response_model=ProcessingRecordsOut)
    async def processing_records(
        household_id: UUID,
        limit: int = Query(100, ge=1, le=1000),
        cursor: str | None = Query(None, max_length=64),
        caller: Caller = service.access.allow(Role.AUDITOR, Role.OPERATOR, purpose="accountability"),
    ) -> ProcessingRecordsOut:
        """Who read, wrote or shared this household's personal data here, oldest first."""
        try:
            after = processing.decode_cursor(cursor)
        except ValueError:
            raise Problem(422, "cursor is not one this list gave", errors=[FieldError(field="query.cursor", rule="cursor")]) from None
        scope = await scopes.find(service.pool, household_id)
        # An auditor sees every trail, even of a household this service holds nothing else about.
        if Role.AUDITOR not in caller.principal.roles and (scope is None or not caller.covers(scope)):
            raise Problem(404, "no such household")
        page, last = await processing.trail(service.pool, [household_id], after, limit)
        return ProcessingRecordsOut(
            items=page,
            next_cursor=processing.encode_cursor(last) if last is not None else None,
        )

    return router
