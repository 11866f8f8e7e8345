"""HTTP entry points of eligibility for a household: its decisions, their history and explanation, and
the recomputation of any stored decision from what it was made from."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ejsika_contracts.events.eligibility import Benefit, ProposedExit, ScoreContribution
from ejsika_runtime import pages
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.pages import Page
from ejsika_runtime.problems import Problem, documented
from ejsika_runtime.service import Service

from . import rule_book
from .domain.assessment import AssessmentInputs, Context, assess

READERS = (Role.PENDAMPING, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR)
Status = Literal["eligible", "not_eligible", "insufficient_data"]


class AssessmentOut(BaseModel):
    """One decision of the history, with its explanation: every indicator's observation and points."""

    assessment_id: UUID = Field(description="Also the id of the eligibility.assessed event, when announced.")
    rule_set: str
    rule_version: int | None = Field(description="None for decisions made before rule sets were data.")
    status: Status | None
    score: float
    desil: int | None
    eligible: bool
    components: list[str]
    benefits: list[Benefit] | None
    yearly_amount: int | None
    missing: list[str] | None
    graduation: Literal["mandiri", "alamiah"] | None
    proposed_exit: ProposedExit | None
    explanation: list[ScoreContribution]
    fingerprint: str | None
    assessed_on: date | None = Field(description="The programme day (Asia/Jakarta) ages were taken on.")
    assessed_at: datetime
    announced: bool = Field(description="Whether the decision changed what the family is told (an event went out).")


class DecisionOut(BaseModel):
    """The decision in force for a household in a programme, under one rule-set version."""

    programme: str
    rule_version: int
    active_rule: bool = Field(description="Made under the programme's active version (others are kept to compare).")
    status: Status
    score: float
    desil: int | None
    missing: list[str]
    components: list[str]
    yearly_amount: int
    graduation: Literal["mandiri", "alamiah"] | None
    proposed_exit: Literal["paksa", "mandiri", "alamiah"] | None
    fingerprint: str
    assessment_id: UUID
    assessed_on: date
    decided_at: datetime


class Compared(BaseModel):
    status: Status
    score: float
    desil: int | None
    components: list[str]
    yearly_amount: int
    graduation: Literal["mandiri", "alamiah"] | None
    proposed_exit: Literal["paksa", "mandiri", "alamiah"] | None
    fingerprint: str


class Recomputed(BaseModel):
    assessment_id: UUID
    rule_set: str
    stored: Compared
    recomputed: Compared
    equal: bool = Field(description="The recomputed decision is the stored one, fingerprint included.")


HISTORY = ("event_id, rule_set, rule_version, status, score, desil, eligible, components, benefits, yearly_amount,"
           " missing, graduation, proposed_exit, explanation, fingerprint, assessed_on, assessed_at, announced")


def _history(row) -> AssessmentOut:
    values = dict(row)
    values["assessment_id"] = values.pop("event_id")
    for name in ("explanation", "benefits", "proposed_exit"):
        if isinstance(values[name], str):
            values[name] = json.loads(values[name])
    return AssessmentOut.model_validate(values)


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["assessments"])
    explaining = service.access.allow(*READERS, purpose="explaining an eligibility decision")

    @router.get("/households/{household_id}/assessments", response_model=Page[AssessmentOut],
                responses={404: documented("No such household, or not the caller's to know about")})
    async def assessments(household_id: UUID, limit: int = pages.limit(), cursor: str | None = pages.cursor(),
                          caller: Caller = explaining) -> Page[AssessmentOut]:
        """The household's decisions, oldest first, each with its explanation, rule version and fingerprint."""
        after = pages.decode(cursor, datetime, UUID) or (None, None)
        async with service.pool.acquire() as conn:
            await caller.household(conn, household_id)
            rows = await conn.fetch(
                f"SELECT {HISTORY} FROM assessments WHERE household_id = $1"
                " AND ($2::timestamptz IS NULL OR (assessed_at, event_id) > ($2, $3::uuid))"
                " ORDER BY assessed_at, event_id LIMIT $4",
                household_id, after[0], after[1], limit + 1)
            await caller.record(conn, "read", [household_id], ("assessments",))
        items = [_history(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=pages.encode(items[-1].assessed_at, items[-1].assessment_id) if more else None)

    @router.get("/households/{household_id}/decisions", response_model=list[DecisionOut],
                responses={404: documented("No such household, or not the caller's to know about")})
    async def current(household_id: UUID, caller: Caller = explaining) -> list[DecisionOut]:
        """The decisions in force, per programme; after a rule change, the older version's too, to compare."""
        async with service.pool.acquire() as conn:
            await caller.household(conn, household_id)
            rows = await conn.fetch(
                "SELECT programme, rule_version, active_rule, status, score, desil, missing, components, yearly_amount,"
                " graduation, proposed_exit, fingerprint, event_id AS assessment_id, assessed_on, decided_at"
                " FROM decisions WHERE household_id = $1 ORDER BY programme, active_rule DESC, rule_version DESC",
                household_id)
            await caller.record(conn, "read", [household_id], ("decisions",))
        return [DecisionOut.model_validate(dict(r)) for r in rows]

    @router.post("/households/{household_id}/assessments/{assessment_id}/recompute", response_model=Recomputed,
                 responses={404: documented("No such household or assessment, or not the caller's to know about"),
                            409: documented("The assessment predates stored inputs: it cannot be recomputed")})
    async def recompute(household_id: UUID, assessment_id: UUID,
                        caller: Caller = service.access.allow(*READERS, purpose="verifying an eligibility decision"),
                        ) -> Recomputed:
        """Assess again from the stored inputs, day, context and rule version, and compare. Changes nothing."""
        async with service.pool.acquire() as conn:
            await caller.household(conn, household_id)
            row = await conn.fetchrow(
                "SELECT rule_set, programme, rule_version, status, score, desil, components, yearly_amount, graduation,"
                " proposed_exit, fingerprint, inputs::text AS inputs, assessed_on, prior_high, active"
                " FROM assessments WHERE household_id = $1 AND event_id = $2", household_id, assessment_id)
            if row is None:
                raise Problem(404, "no such assessment of this household")
            if row["inputs"] is None or row["rule_version"] is None:
                raise Problem(409, "this assessment predates stored inputs and cannot be recomputed")
            rules = await rule_book.version(conn, row["programme"], row["rule_version"])
            await caller.record(conn, "read", [household_id], ("assessments",))
        if rules is None:
            raise Problem(409, "the rule set of this assessment is not stored")
        inputs = AssessmentInputs.model_validate_json(row["inputs"])
        again = assess(inputs, rules, row["assessed_on"], Context(row["prior_high"] or 0, bool(row["active"])))
        stored = Compared(
            status=row["status"], score=row["score"], desil=row["desil"], components=list(row["components"]),
            yearly_amount=row["yearly_amount"], graduation=row["graduation"],
            proposed_exit=(json.loads(row["proposed_exit"]) or {}).get("kind") if row["proposed_exit"] else None,
            fingerprint=row["fingerprint"])
        recomputed = Compared(
            status=again.status, score=again.score, desil=again.desil, components=again.components,
            yearly_amount=again.yearly_amount, graduation=again.graduation,
            proposed_exit=(again.proposed_exit or {}).get("kind"), fingerprint=again.fingerprint)
        return Recomputed(assessment_id=assessment_id, rule_set=row["rule_set"], stored=stored, recomputed=recomputed,
                          equal=stored == recomputed)

    return router

