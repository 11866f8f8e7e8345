"""HTTP entry point of the what-if for policy makers: another quota, threshold or rule set, nothing changed."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ejsika_contracts import Contract
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import FieldError, Problem, documented
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.service import Service

from . import what_if
from .domain.quotas import Funder, FundersRefused, Quota, check_funders
from .domain.rules import InvalidRuleSet, load
from .quotas_api import PROGRAMME_CODE, REGION_CODE, FunderIn


class QuotaChange(Contract):
    region: str = Field(pattern=REGION_CODE, description="The kabupaten/kota, e.g. 3601.")
    families: int = Field(ge=0, le=10_000_000)
    budget: int = Field(ge=0, le=10**15)
    funders: list[FunderIn] = Field(min_length=1, max_length=20)


class GraduationChange(Contract):
    min_desil: int = Field(ge=1, le=10)
    consecutive: int = Field(ge=1, le=24)


class WhatIfIn(Contract):
    programme: str = Field(pattern=PROGRAMME_CODE)
    year: int | None = Field(default=None, ge=2000, le=2100, description="The quotas' year; default this year.")
    quotas: list[QuotaChange] = Field(default=[], max_length=100, description="Quotas as they would be.")
    entry_max_desil: int | None = Field(default=None, ge=1, le=10, description="Eligible up to this desil.")
    graduation: GraduationChange | None = None
    rule_set: dict[str, Any] | None = Field(default=None, description="A whole rule-set document, as an admin loads it.")
    first: int = Field(default=20, ge=0, le=1000, description="How many household ids of each list to give.")


class Families(BaseModel):
    count: int
    first: list[UUID] = Field(description="The first household ids (no names).")


class BeforeAfter(BaseModel):
    before: int
    after: int


class FunderCosts(BaseModel):
    funder: str
    cost_before: int
    cost_after: int


class RegionCosts(BaseModel):
    region: str
    families_before: int
    families_after: int
    cost_before: int
    cost_after: int
    funders: list[FunderCosts]


class WhatIfOut(BaseModel):
    programme: str
    year: int
    households: int = Field(description="Households of the programme considered.")
    entering: Families = Field(description="Would hold a place and do not now.")
    leaving: Families = Field(description="Hold a place now and would not (no longer eligible, or outside the quota).")
    eligible: BeforeAfter
    families: BeforeAfter = Field(description="Families holding a place.")
    cost: BeforeAfter = Field(description="Rupiah a year of the families holding a place.")
    graduation_candidates: dict[str, int] | None
    regions: list[RegionCosts]


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["what-if"])
    ask_as = service.access.allow(Role.OPERATOR, Role.AUDITOR, Role.ADMIN, purpose="planning a programme's policy")

    @router.post("/what-if", response_model=WhatIfOut,
                 responses={403: documented("An operator asking about another programme"),
                            422: documented("A quota or rule set that breaks a rule")},
                 description="Who would enter and who would leave the programme, and the cost per region and "
                             "funder, under other quotas, another entry or graduation threshold, or a new rule "
                             "set; computed over every household of the programme without changing anything.")
    async def ask(body: WhatIfIn, caller: Caller = ask_as) -> WhatIfOut:
        p = caller.principal
        if Role.OPERATOR in p.roles and not p.roles & {Role.ADMIN, Role.AUDITOR} and p.programme != body.programme:
            raise Problem(403, "an operator asks about their own programme only")
        today = programme_today()
        quotas = {}
        for index, q in enumerate(body.quotas):
            funders = tuple(Funder(f.funder, f.share) for f in q.funders)
            try:
                check_funders(funders)
            except FundersRefused as refused:
                raise Problem(422, str(refused), errors=[FieldError(
                    field=f"quotas[{index}].{refused.field}", rule=refused.rule, reason=str(refused))]) from None
            quotas[q.region] = Quota(body.programme, body.year or today.year, q.region, q.families, q.budget, funders)
        rules = None
        if body.rule_set is not None:
            try:
                rules = load(body.rule_set)
            except InvalidRuleSet as invalid:
                raise Problem(422, "the rule set breaks the rules listed in errors", errors=[
                    FieldError(field=f"rule_set.{e.field}", rule=e.rule, reason=e.reason) for e in invalid.errors
                ]) from None
            if rules.programme != body.programme:
                raise Problem(422, "the rule set is of another programme", errors=[
                    FieldError(field="rule_set.programme", rule="programme", reason="not the programme asked about")])
        scenario = what_if.Scenario(
            body.programme, body.year or today.year, quotas, body.entry_max_desil,
            body.graduation.min_desil if body.graduation else None,
            body.graduation.consecutive if body.graduation else None, rules, body.first)
        async with service.pool.acquire() as conn:
            answer = await what_if.run(conn, scenario, today)
        return WhatIfOut(**answer)

    return router
