"""HTTP entry points for rule sets: an admin loads a version and activates it; the reassessment of the
programme that follows runs in the background and its progress can be read."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Body, Path, Response
from pydantic import BaseModel, Field

from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import FieldError, Problem, documented
from ejsika_runtime.service import Service

from . import rule_change
from .domain.rules import DEFAULTS, MAX_VERSION, InvalidRuleSet, load

READERS = (Role.ADMIN, Role.OPERATOR, Role.AUDITOR)
ProgrammePath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{1,31}$", description="Programme code, e.g. jamsosratu.")]
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION)]
EXAMPLE = json.loads((DEFAULTS / "jamsosratu.v1.json").read_text())


class RuleSetOut(BaseModel):
    programme: str
    version: int
    title: str
    active: bool
    loaded_by: str
    loaded_at: datetime
    document: dict[str, Any] = Field(description="The rule set as loaded (the same shape POST /rule-sets takes).")


class RuleSetSummary(BaseModel):
    programme: str
    version: int
    title: str
    active: bool
    loaded_by: str
    loaded_at: datetime


class JobAccepted(BaseModel):
    job_id: UUID
    programme: str
    version: int


class ReassessmentOut(BaseModel):
    job_id: UUID
    programme: str
    from_version: int | None
    to_version: int
    state: Literal["running", "done", "failed"]
    done: int = Field(description="Households reassessed so far.")
    total: int = Field(description="Households of the programme when the job started.")
    changed: int = Field(description="Households whose decision changed (each announced).")
    started_at: datetime
    finished_at: datetime | None


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["rule sets"])
    reading = service.access.allow(*READERS, purpose="reading the programmes' eligibility rules")

    @router.post("/rule-sets", status_code=201, response_model=RuleSetSummary,
                 responses={409: documented("This programme already has this version: versions are never replaced")})
    async def add(document: dict[str, Any] = Body(openapi_examples={"jamsosratu": {"value": EXAMPLE}}),
                  caller: Caller = service.access.allow(Role.ADMIN, purpose="loading an eligibility rule set"),
                  ) -> RuleSetSummary:
        """Load a new version of a programme's rules (the shape of rule_sets/*.json), inactive until activated."""
        try:
            rules = load(document)
        except InvalidRuleSet as invalid:
            raise Problem(422, "the rule set breaks the rules listed in errors", errors=[
                FieldError(field=e.field, rule=e.rule, reason=e.reason) for e in invalid.errors]) from None
        try:
            row = await service.pool.fetchrow(
                "INSERT INTO rule_sets (programme, version, document, loaded_by) VALUES ($1, $2, $3, $4)"
                " RETURNING programme, version, active, loaded_by, loaded_at",
                rules.programme, rules.version, json.dumps(rules.document()), caller.principal.subject)
        except asyncpg.UniqueViolationError:
            raise Problem(409, "this programme already has this version; load the next one") from None
        return RuleSetSummary(**dict(row), title=rules.title)

    @router.get("/rule-sets", response_model=list[RuleSetSummary])
    async def listed(caller: Caller = reading) -> list[RuleSetSummary]:
        """Every version of every programme's rules, the active one marked."""
        rows = await service.pool.fetch(
            "SELECT programme, version, document->>'title' AS title, active, loaded_by, loaded_at FROM rule_sets"
            " ORDER BY programme, version")
        return [RuleSetSummary(**{**dict(r), "title": r["title"] or ""}) for r in rows]

    @router.get("/rule-sets/{programme}/{version}", response_model=RuleSetOut,
                responses={404: documented("No such rule set")})
    async def one(programme: ProgrammePath, version: VersionPath, caller: Caller = reading) -> RuleSetOut:
        row = await service.pool.fetchrow(
            "SELECT programme, version, document::text AS document, active, loaded_by, loaded_at FROM rule_sets"
            " WHERE programme = $1 AND version = $2", programme, version)
        if row is None:
            raise Problem(404, "no such rule set")
        document = json.loads(row["document"])
        return RuleSetOut(**{**dict(row), "document": document, "title": document.get("title", "")})

    @router.post("/rule-sets/{programme}/{version}/activation", status_code=202, response_model=JobAccepted,
                 responses={404: documented("No such rule set"),
                            409: documented("Already active, or a reassessment of the programme is still running")})
    async def activation(programme: ProgrammePath, version: VersionPath, response: Response,
                         caller: Caller = service.access.allow(Role.ADMIN, purpose="changing a programme's rules"),
                         ) -> JobAccepted:
        """Make this version the programme's rules and reassess every household of it in the background."""
        try:
            job_id = await rule_change.activate(service.pool, programme, version, caller.principal.subject)
        except rule_change.ActivationRefused as refused:
            raise Problem(refused.status, refused.detail) from None
        response.headers["Location"] = f"/reassessments/{job_id}"
        return JobAccepted(job_id=job_id, programme=programme, version=version)

    @router.get("/reassessments/{job_id}", response_model=ReassessmentOut,
                responses={404: documented("No such reassessment")})
    async def progress(job_id: UUID, caller: Caller = reading) -> ReassessmentOut:
        row = await service.pool.fetchrow(
            "SELECT job_id, programme, from_version, to_version, state, done, total, changed, started_at, finished_at"
            " FROM reassessments WHERE job_id = $1", job_id)
        if row is None:
            raise Problem(404, "no such reassessment")
        return ReassessmentOut(**dict(row))

    return router
