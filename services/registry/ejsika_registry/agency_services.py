"""Which agency (OPD) programmes a family benefits from, from the agencies' own answers.

Every provincial agency agreed to take KPM into its poverty programmes: the education office places
KPM children at SMA/SMK, the health office follows pregnancies and toddlers. When an agency answers
a notification about a family, notifications emits `agency.answered`; the registry keeps each answer
and shows, per family, each agency programme with its latest answer (accepted or service delivered:
the family benefits; declined: shown as declined, with the reason) and the history behind it.

The latest answer is the one the agency gave last (`answered_at`), not the one that arrived last.
Staff read it as they read the household; an agency never reads the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter
from pydantic import BaseModel, Field

from ejsika_contracts import AgencyAnswered
from ejsika_runtime import processing
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import Problem
from ejsika_runtime.service import Service
from ejsika_runtime.unit_of_work import UnitOfWork

from .api import STAFF

FIELDS = ("agency_services.agency", "agency_services.programme", "agency_services.outcome",
          "agency_services.reason", "agency_services.member_id")
PROCESSOR = processing.Processor("registry", "service")
PURPOSE = "showing the agency programmes a family benefits from"
BENEFITING = frozenset({"accepted", "service_delivered"})

Outcome = Literal["accepted", "service_delivered", "declined"]


async def record_answers(uow: UnitOfWork, events: list[AgencyAnswered]) -> None:
    """The consumer of agency.answered: keep the batch's answers, in one statement."""
    await uow.conn.execute(
        "INSERT INTO agency_services (event_id, household_id, agency, programme, member_id, outcome, reason,"
        " notification_id, answered_at)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[],"
        " $8::uuid[], $9::timestamptz[]) ON CONFLICT (event_id) DO NOTHING",
        [e.id for e in events], [e.data.household_id for e in events], [e.data.agency for e in events],
        [e.data.programme for e in events], [e.data.member_id for e in events], [e.data.outcome for e in events],
        [e.data.reason for e in events], [e.data.notification_id for e in events],
        [e.data.answered_at for e in events])
    await processing.record(uow.conn, PROCESSOR, "write", {e.data.household_id for e in events}, FIELDS,
                            f"event {AgencyAnswered.event_type}", PURPOSE)


class AnswerOut(BaseModel):
    outcome: Outcome
    reason: str | None
    notification_id: UUID
    answered_at: datetime


class AgencyServiceOut(BaseModel):
    agency: str = Field(description="The agency's code, e.g. dinas-pendidikan.")
    programme: str = Field(description="The agency's programme, e.g. sma_smk_placement.")
    member_id: UUID | None = Field(description="The member it is about, when the agency named one.")
    benefits: bool = Field(description="The latest answer accepted the family or delivered the service.")
    outcome: Outcome = Field(description="The latest answer's outcome.")
    since: datetime = Field(description="When the latest answer was given.")
    history: list[AnswerOut] = Field(description="Every answer of this programme, oldest first.")


class HouseholdAgencyServicesOut(BaseModel):
    household_id: UUID
    services: list[AgencyServiceOut] = Field(description="Benefiting first, then declined; newest first in each.")


@dataclass(frozen=True)
class Answer:
    agency: str
    programme: str
    member_id: UUID | None
    outcome: Outcome
    reason: str | None
    notification_id: UUID
    answered_at: datetime


def services(answers: Sequence[Answer]) -> list[AgencyServiceOut]:
    """Each agency programme (per member, when named) with its latest answer and its history."""
    grouped: dict[tuple[str, str, UUID | None], list[Answer]] = {}
    for answer in sorted(answers, key=lambda a: a.answered_at):
        grouped.setdefault((answer.agency, answer.programme, answer.member_id), []).append(answer)
    found = []
    for (agency, programme, member_id), history in grouped.items():
        latest = history[-1]
        found.append(AgencyServiceOut(
            agency=agency, programme=programme, member_id=member_id, benefits=latest.outcome in BENEFITING,
            outcome=latest.outcome, since=latest.answered_at,
            history=[AnswerOut(outcome=a.outcome, reason=a.reason, notification_id=a.notification_id,
                               answered_at=a.answered_at) for a in history]))
    found.sort(key=lambda s: s.since, reverse=True)
    found.sort(key=lambda s: not s.benefits)  # stable: benefiting first, each newest first
    return found


async def of_household(conn: asyncpg.Connection, household_id: UUID) -> list[AgencyServiceOut]:
    rows = await conn.fetch(
        "SELECT agency, programme, member_id, outcome, reason, notification_id, answered_at FROM agency_services"
        " WHERE household_id = $1 ORDER BY answered_at, event_id", household_id)
    return services([Answer(**dict(r)) for r in rows])


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["agency services"])
    read_as = service.access.allow(*STAFF, Role.AUDITOR, purpose="case management of a family")

    @router.get("/households/{household_id:uuid}/agency-services", response_model=HouseholdAgencyServicesOut)
    async def household_agency_services(household_id: UUID, caller: Caller = read_as) -> HouseholdAgencyServicesOut:
        """The agency programmes the family benefits from, or was declined by, as the agencies answered."""
        async with service.pool.acquire() as conn:
            await caller.household(conn, household_id)
            if not await conn.fetchval("SELECT true FROM households WHERE id = $1", household_id):
                raise Problem(404, "no such household")
            found = await of_household(conn, household_id)
            await caller.record(conn, "read", [household_id], FIELDS)
        return HouseholdAgencyServicesOut(household_id=household_id, services=found)

    return router
