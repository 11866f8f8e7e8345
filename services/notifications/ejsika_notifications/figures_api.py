"""HTTP: how an agency is served and how it answers, in figures (no family in them).

Notifications are counted over those the service keeps (delivered ones are pruned after the
delivery retention, 30 days by default); answers over all time. The same figures, counted since
each replica started, are Prometheus metrics labelled by agency code (metrics.py).
"""

from __future__ import annotations

import asyncpg
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import Problem, documented
from ejsika_runtime.service import Service

from .domain.agencies import AGENCY_CODE


class NotificationFigures(BaseModel):
    notified: int = Field(description="Notifications kept for the agency, whatever their state.")
    pending: int = Field(description="Waiting to be sent, or to be tried again.")
    delivered: int
    failed: int = Field(description="Given up after the last attempt (an operator may redeliver them).")


class TimeToAnswer(BaseModel):
    """From a notification queued to its first answer, over the notifications answered."""

    count: int
    median_s: float | None
    p90_s: float | None
    max_s: float | None


class AnswerFigures(BaseModel):
    answered: int = Field(description="Notifications with at least one answer.")
    answers: int = Field(description="Answers given (a notification may be answered several times).")
    accepted: int
    service_delivered: int
    declined: int
    time_to_answer: TimeToAnswer


class AgencyFigures(BaseModel):
    agency: str
    notifications: NotificationFigures
    answers: AnswerFigures


async def figures(conn: asyncpg.Connection, agency: str) -> AgencyFigures:
    """The agency's figures: two aggregate statements."""
    sent = await conn.fetchrow(
        "SELECT count(*) AS notified, count(*) FILTER (WHERE d.status = 'pending') AS pending,"
        " count(*) FILTER (WHERE d.status = 'delivered') AS delivered,"
        " count(*) FILTER (WHERE d.status = 'failed') AS failed"
        " FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id WHERE s.agency = $1", agency)
    answered = await conn.fetchrow(
        "WITH firsts AS (SELECT DISTINCT ON (notification_id) extract(epoch FROM answered_at - notified_at) AS s"
        "  FROM agency_answers WHERE agency = $1 ORDER BY notification_id, answered_at)"
        " SELECT (SELECT count(*) FROM firsts) AS answered,"
        " (SELECT count(*) FROM agency_answers WHERE agency = $1) AS answers,"
        " (SELECT count(*) FROM agency_answers WHERE agency = $1 AND outcome = 'accepted') AS accepted,"
        " (SELECT count(*) FROM agency_answers WHERE agency = $1 AND outcome = 'service_delivered')"
        "  AS service_delivered,"
        " (SELECT count(*) FROM agency_answers WHERE agency = $1 AND outcome = 'declined') AS declined,"
        " (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(s, 0)) FROM firsts)::float8 AS median_s,"
        " (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY greatest(s, 0)) FROM firsts)::float8 AS p90_s,"
        " (SELECT max(greatest(s, 0)) FROM firsts)::float8 AS max_s", agency)
    return AgencyFigures(
        agency=agency,
        notifications=NotificationFigures(**dict(sent)),
        answers=AnswerFigures(
            answered=answered["answered"], answers=answered["answers"], accepted=answered["accepted"],
            service_delivered=answered["service_delivered"], declined=answered["declined"],
            time_to_answer=TimeToAnswer(count=answered["answered"], median_s=answered["median_s"],
                                        p90_s=answered["p90_s"], max_s=answered["max_s"])),
    )


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["figures"])
    read_as = service.access.allow(Role.ADMIN, Role.OPERATOR, Role.AUDITOR, Role.AGENCY,
                                   purpose="following how agencies are served and answer", hidden_from=())

    @router.get("/agencies/{code}/figures", response_model=AgencyFigures,
                responses={404: documented("No such agency, or another agency than the caller's own")})
    async def agency_figures(code: str = Path(pattern=AGENCY_CODE, description="The agency's code."),
                             caller: Caller = read_as) -> AgencyFigures:
        """Notifications sent, delivered, failed and answered, and the time to answer, of one agency."""
        roles = caller.principal.roles
        if not roles & {Role.ADMIN, Role.OPERATOR, Role.AUDITOR} and caller.principal.agency != code:
            raise Problem(404, "no such agency")
        async with service.pool.acquire() as conn:
            if not await conn.fetchval("SELECT true FROM agencies WHERE code = $1", code):
                raise Problem(404, "no such agency")
            return await figures(conn, code)

    return router
