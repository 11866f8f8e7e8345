"""HTTP entry points of quotas: set a quota with its funders, read quotas with their use, and the waiting list.

Operators set and read the quotas of their own programme; admins set any; auditors read all. The waiting list
names households (ids, never names): operators of the programme, supervisors (the families of their area) and
auditors read it, each read recorded.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, Field

from ejsika_contracts import Contract
from ejsika_runtime import pages, scopes, versions
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.pages import Page
from ejsika_runtime.problems import FieldError, Problem, documented
from ejsika_runtime.service import Service

from . import quotas
from .domain.quotas import Funder, FundersRefused, Quota, Usage, check_funders, cost_per_funder

PROGRAMME_CODE = r"^[a-z][a-z0-9-]{1,31}$"
# Kemendagri PP.KK: a regency (01-69) or a city (71-99) of a province
REGION_CODE = r"^[1-9][0-9](0[1-9]|[1-6][0-9]|7[1-9]|[89][0-9])$"
ETAG_HEADER = {"ETag": {"description": "The quota's version, for If-Match", "schema": {"type": "string"}}}
RANKING = ("Eligible candidates (decision `eligible` under the programme's active rule set, enrolment `candidate`) "
           "are ranked by deprivation first, the highest score first; ties go to the family registered earlier, "
           "then to the smaller household id. The families holding a place (active or suspended, or admitted and "
           "not yet applied) count first; the line is then admitted in rank order while both the families and "
           "the budget left cover the next family, and the first that does not fit stops the admissions.")

ProgrammePath = Annotated[str, Path(pattern=PROGRAMME_CODE, description="The programme's code, e.g. jamsosratu.")]
YearPath = Annotated[int, Path(ge=2000, le=2100, description="The programme year.")]
RegionPath = Annotated[str, Path(pattern=REGION_CODE, description="The kabupaten/kota, Kemendagri PP.KK, e.g. 3601.")]


class FunderIn(Contract):
    funder: str = Field(pattern=r"^[a-z][a-z0-9-]{1,63}$", description="Funding source, e.g. apbd-provinsi-banten.")
    share: float = Field(gt=0, le=1, description="Its share of the budget; the shares add up to 1.")


class QuotaIn(Contract):
    families: int = Field(ge=0, le=10_000_000, description="Families the quota admits at most.")
    budget: int = Field(ge=0, le=10**15, description="Rupiah a year the quota pays at most.")
    funders: list[FunderIn] = Field(min_length=1, max_length=20,
                                    description="Who shares the budget (sharing anggaran), shares adding up to 1.")


class FunderCost(BaseModel):
    funder: str
    share: float
    budget: int = Field(description="Rupiah a year of the quota's budget this funder pays.")
    used: int | None = Field(default=None, description="Rupiah a year it pays for the families holding places.")


class UsageOut(BaseModel):
    families_held: int = Field(description="Active or suspended families of the programme in the region.")
    families_pending: int = Field(description="Admitted families the registry has not made active yet.")
    amount_used: int = Field(description="Rupiah a year of the families held and pending.")
    families_free: int
    budget_free: int
    waiting: int = Field(description="Eligible candidates in line.")


class QuotaOut(BaseModel):
    programme: str
    year: int
    region: str
    families: int
    budget: int
    funders: list[FunderCost]
    version: int
    updated_by: str
    updated_at: datetime
    usage: UsageOut | None = Field(default=None, description="What holds the quota's places now (single reads).")


class WaitingOut(BaseModel):
    rank: int = Field(description="Place in the whole line of the region (1: next to be admitted).")
    household_id: UUID
    score: float
    desil: int | None
    yearly_amount: int


def quota_out(stored: quotas.StoredQuota, used: Usage | None = None, pending: Usage | None = None,
              waiting: int | None = None) -> QuotaOut:
    q = stored.quota
    budget_parts = cost_per_funder(q.budget, q.funders)
    taken = Usage(used.families + pending.families, used.amount + pending.amount) if used and pending else None
    used_parts = cost_per_funder(taken.amount, q.funders) if taken else {}
    return QuotaOut(
        programme=q.programme, year=q.year, region=q.region, families=q.families, budget=q.budget,
        funders=[FunderCost(funder=f.funder, share=f.share, budget=budget_parts[f.funder],
                            used=used_parts.get(f.funder)) for f in q.funders],
        version=stored.version, updated_by=stored.updated_by, updated_at=stored.updated_at,
        usage=UsageOut(families_held=used.families, families_pending=pending.families, amount_used=taken.amount,
                       families_free=max(0, q.families - taken.families), budget_free=max(0, q.budget - taken.amount),
                       waiting=waiting or 0) if taken else None)


def _programme_of(caller: Caller, programme: str) -> None:
    """An operator acts on the quotas of their own programme only."""
    roles = caller.principal.roles
    if Role.OPERATOR in roles and not roles & {Role.ADMIN, Role.AUDITOR} and caller.principal.programme != programme:
        raise Problem(403, "an operator reads and sets the quotas of their own programme only")


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["quotas"])
    set_as = service.access.allow(Role.OPERATOR, Role.ADMIN, purpose="setting a programme's quota and its funders")
    read_as = service.access.allow(Role.OPERATOR, Role.AUDITOR, Role.ADMIN,
                                   purpose="planning a programme's quotas and budget")
    line_as = service.access.allow(Role.OPERATOR, Role.SUPERVISOR, Role.AUDITOR,
                                   purpose="admitting families within a programme's quota")

    @router.put("/quotas/{programme}/{year}/{region}", response_model=QuotaOut, status_code=200,
                responses={200: {"headers": ETAG_HEADER, "description": "The quota, changed"},
                           201: {"headers": ETAG_HEADER, "description": "The quota, created",
                                 "model": QuotaOut},
                           **versions.RESPONSES,
                           403: documented("An operator naming another programme than their own"),
                           422: documented("The body breaks a rule, e.g. funders' shares not adding up to 1")},
                description="Set the quota of a programme, year and kabupaten/kota in families and budget, with "
                            "the funders sharing the budget. Changing an existing quota needs If-Match with its "
                            "ETag. A quota of the current year is allocated again at once. " + RANKING)
    async def put_quota(body: QuotaIn, response: Response, programme: ProgrammePath, year: YearPath,
                        region: RegionPath, caller: Caller = set_as,
                        if_match: str | None = Header(None, alias="If-Match",
                                                      description='The ETag of the quota read, e.g. "3".')) -> QuotaOut:
        _programme_of(caller, programme)
        funders = tuple(Funder(f.funder, f.share) for f in body.funders)
        try:
            check_funders(funders)
        except FundersRefused as refused:
            raise Problem(422, str(refused), errors=[FieldError(field=refused.field, rule=refused.rule,
                                                                 reason=str(refused))]) from None
        expected = versions.expected_version(if_match) if if_match is not None else None
        quota = Quota(programme, year, region, body.families, body.budget, funders)
        try:
            async with service.transaction() as uow:
                stored, created = await quotas.put(uow, quota, expected, caller.principal.subject)
        except quotas.QuotaVersionMissing:
            raise Problem(428, "this quota exists: send If-Match with the ETag of the version read") from None
        except quotas.StaleQuota as stale:
            raise versions.stale(stale.current) from None
        versions.set_version(response, stored.version)
        response.status_code = 201 if created else 200
        return quota_out(stored)

    @router.get("/quotas", response_model=Page[QuotaOut],
                description="The quotas, by programme, year and region; an operator's are those of their programme.")
    async def list_quotas(programme: str | None = Query(None, pattern=PROGRAMME_CODE),
                          year: int | None = Query(None, ge=2000, le=2100),
                          limit: int = pages.limit(), cursor: str | None = pages.cursor(),
                          caller: Caller = read_as) -> Page[QuotaOut]:
        if programme is not None:
            _programme_of(caller, programme)
        elif Role.OPERATOR in caller.principal.roles and not caller.principal.roles & {Role.ADMIN, Role.AUDITOR}:
            programme = caller.principal.programme or "-"  # no programme claim: no quota
        after = pages.decode(cursor, str, int, str)
        found, last = await quotas.listed(service.pool, programme, year, after, limit)
        return Page[QuotaOut](items=[quota_out(q) for q in found], next_cursor=pages.encode(*last) if last else None)

    @router.get("/quotas/{programme}/{year}/{region}", response_model=QuotaOut,
                responses={200: {"headers": ETAG_HEADER}, 403: documented("An operator of another programme"),
                           404: documented("No quota for this programme, year and region")},
                description="The quota with what holds its places now and the cost per funder.")
    async def get_quota(response: Response, programme: ProgrammePath, year: YearPath, region: RegionPath,
                        caller: Caller = read_as) -> QuotaOut:
        _programme_of(caller, programme)
        async with service.pool.acquire() as conn:
            stored = await quotas.find(conn, (programme, year, region))
            if stored is None:
                raise Problem(404, "no quota for this programme, year and region")
            held, pending = (await quotas.usage(conn, [(programme, region)]))[programme, region]
            waiting = await quotas.waiting_count(conn, programme, region)
        versions.set_version(response, stored.version)
        return quota_out(stored, held, pending, waiting)

    @router.get("/quotas/{programme}/{year}/{region}/waiting-list", response_model=Page[WaitingOut],
                responses={403: documented("An operator of another programme"),
                           404: documented("No quota for this programme, year and region")},
                description="The eligible candidates waiting for a place, in rank order, with their rank in the "
                            "whole line (a supervisor sees the families of their area). " + RANKING)
    async def waiting_list(programme: ProgrammePath, year: YearPath, region: RegionPath,
                           limit: int = pages.limit(), cursor: str | None = pages.cursor(),
                           caller: Caller = line_as) -> Page[WaitingOut]:
        _programme_of(caller, programme)
        (after,) = pages.decode(cursor, int) or (0,)
        sql, values = scopes.condition(caller.principal, "s", first=5)
        async with service.pool.acquire() as conn:
            if await quotas.find(conn, (programme, year, region)) is None:
                raise Problem(404, "no quota for this programme, year and region")
            items, last = await quotas.waiting(conn, programme, region, after, limit, sql, values)
            await caller.record(conn, "read", [i["household_id"] for i in items],
                                ("eligibility.score", "eligibility.desil", "eligibility.yearly_amount", "quota.rank"))
        return Page[WaitingOut](items=[WaitingOut(**i) for i in items],
                                next_cursor=pages.encode(last) if last else None)

    return router

