"""HTTP entry point of the figures: aggregates per programme, region and period, no household ids."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import FieldError, Problem, documented
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.service import Service

from . import figures
from .quotas_api import PROGRAMME_CODE


class Graduated(BaseModel):
    mandiri: int = Field(description="Families that declared themselves able.")
    alamiah: int = Field(description="Families with no eligible component left.")


class Exited(BaseModel):
    paksa: int = Field(description="Active families made to leave (non-compliance, or certified able).")
    not_admitted: int = Field(description="Candidates that left before admission.")


class FigureRow(BaseModel):
    programme: str
    region: str = Field(description="The kabupaten/kota (Kemendagri PP.KK).")
    entered: int = Field(description="Candidates that became active (admitted).")
    graduated: Graduated
    exited: Exited
    average_days_to_graduation: float | None = Field(
        description="Mean days from a family's last entry to its graduation, over the period's graduations.")


class FiguresOut(BaseModel):
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    rows: list[FigureRow]


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["figures"])
    read_as = service.access.allow(Role.OPERATOR, Role.SUPERVISOR, Role.AUDITOR,
                                   purpose="monitoring which families become prosperous")

    @router.get("/figures", response_model=FiguresOut, response_model_by_alias=True,
                responses={403: documented("An operator's other programme, or a region outside a supervisor's area")},
                description="Per programme, kabupaten/kota and period (effective days, Asia/Jakarta, both included): "
                            "families entered, graduated by kind, exited, and the average days from entry to "
                            "graduation. An operator sees their programme, a supervisor their area.")
    async def read_figures(
        programme: str | None = Query(None, pattern=PROGRAMME_CODE),
        region: str | None = Query(None, pattern=r"^\d{2,10}$", description="A Kemendagri code prefix, e.g. 3601."),
        start: date | None = Query(None, alias="from", description="First day; default 1 January of this year."),
        end: date | None = Query(None, alias="to", description="Last day; default today."),
        caller: Caller = read_as,
    ) -> FiguresOut:
        p = caller.principal
        today = programme_today()
        start, end = start or date(today.year, 1, 1), end or today
        if end < start:
            raise Problem(422, "the period ends before it starts",
                          errors=[FieldError(field="query.to", rule="period", reason="to is before from")])
        if Role.AUDITOR not in p.roles:
            if Role.OPERATOR in p.roles:
                if programme not in (None, p.programme):
                    raise Problem(403, "an operator reads the figures of their own programme only")
                programme = p.programme or "-"
            elif Role.SUPERVISOR in p.roles:
                area = p.area or "-"
                if region is not None and not region.startswith(area):
                    raise Problem(403, "a supervisor reads the figures of their own area only")
                region = region or area
        rows = await figures.figures(service.pool, start, end, programme, region)
        return FiguresOut(start=start, end=end, rows=[FigureRow(**r) for r in rows])

    return router
