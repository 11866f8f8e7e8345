"""HTTP: an agency answers its notifications; it, operators and auditors read the answers.

An agency's system answers only the notifications it received: any other id is a 404, as if it did
not exist. Operators read the answers about the families of their programme, auditors all of them.
The answers name no family: the agency knows it by its own reference, the others through the
registry, which shows each family's agency programmes once the `agency.answered` events arrive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Response
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field

from ejsika_runtime import pages
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import FieldError, Problem, documented
from ejsika_runtime.service import Service

from . import answers, pseudonyms
from .metrics import AnswerMetrics

class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: UUID = Field(description="The agency's id of this answer: a retry with the same id and answer "
                                        "gives back the first result (200); another answer with it is a 409.")
    programme: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,63}$", examples=["sma_smk_placement"],
                           description="The agency's programme the answer is about.")
    outcome: Literal["accepted", "service_delivered", "declined"] = Field(
        description="accepted (taken into the programme), service_delivered (e.g. placed at an SMA/SMK, the "
                    "check-up happened) or declined (with a reason).")
    reason: str | None = Field(default=None, min_length=1, max_length=500,
                               description="Why; required when declined. No names or NIKs: refer to people "
                                           "by reference.")
    member_reference: str | None = Field(default=None, pattern=pseudonyms.REFERENCE_PATTERN,
                                         description="The agency's reference of the member the answer is about, "
                                                     "as its notifications named the member.")


class AnswerOut(BaseModel):
    id: UUID
    notification_id: UUID
    agency: str
    client_id: UUID
    programme: str
    outcome: str
    reason: str | None
    member_reference: str | None
    answered_at: datetime

    @classmethod
    def of(cls, answer: answers.Answer) -> AnswerOut:
        return cls(id=answer.id, notification_id=answer.notification_id, agency=answer.agency,
                   client_id=answer.client_id, programme=answer.programme, outcome=answer.outcome,
                   reason=answer.reason, member_reference=answer.member_reference, answered_at=answer.answered_at)


ANSWER_RESPONSES = {
    200: {"description": "The same answer sent again with its client_id: the first result, nothing changed"},
    404: documented("No such notification, or not one this agency received"),
    409: documented("The client_id was used for another answer"),
}


def _correlation(x_correlation_id: str | None = Header(default=None)) -> UUID | None:
    try:
        return UUID(x_correlation_id) if x_correlation_id else None
    except ValueError:
        raise Problem(400, "X-Correlation-Id must be a UUID") from None


def routes(service: Service, metrics: AnswerMetrics) -> APIRouter:
    router = APIRouter(tags=["answers"])
    answer_as = service.access.allow(Role.AGENCY, purpose="an agency's answer about a family it was told of")
    read_as = service.access.allow(Role.AGENCY, Role.OPERATOR, Role.AUDITOR,
                                   purpose="following the agencies' answers about families", hidden_from=())

    @router.post("/notifications/{notification_id:uuid}/answers", status_code=http.HTTP_201_CREATED,
                 response_model=AnswerOut, responses=ANSWER_RESPONSES)
    async def answer(notification_id: UUID, body: AnswerIn, response: Response, caller: Caller = answer_as,
                     correlation_id: UUID | None = Depends(_correlation)) -> AnswerOut:
        """Answer a notification this agency received: accepted, service_delivered, or declined with a reason."""
        if body.outcome == "declined" and body.reason is None:
            raise Problem(422, "a declined answer gives its reason",
                          errors=[FieldError(field="reason", rule="reason_required")])
        agency = caller.principal.agency
        wanted = answers.Wanted(body.client_id, body.programme, body.outcome, body.reason, body.member_reference)
        try:
            async with service.transaction() as uow:
                found = await answers.notification(uow.conn, notification_id)
                if found is None or agency is None or found.agency != agency:
                    raise Problem(404, "no such notification")
                member_id = None
                if body.member_reference is not None:  # one of the references this agency was handed
                    member_id = await pseudonyms.resolve(uow.conn, agency, body.member_reference, "member")
                    if member_id is None:
                        raise Problem(422, "this agency was given no member of that reference",
                                      errors=[FieldError(field="member_reference", rule="known_member")])
                    if not await uow.conn.fetchval(
                            "SELECT EXISTS (SELECT 1 FROM family_members WHERE household_id = $1 AND member_id = $2)",
                            found.household_id, member_id):
                        raise Problem(422, "that member is not one of the notified family's members",
                                      errors=[FieldError(field="member_reference", rule="member_of_family")])
                given = await answers.give(uow, found, wanted, member_id, correlation_id)
                if given.created:
                    await caller.record(uow.conn, "write", [found.household_id], answers.ANSWER_FIELDS)
        except answers.ClientIdTaken:
            raise Problem(409, "this client_id was used for another answer") from None
        if given.created:
            metrics.answers.labels(agency).inc()
            if given.first_of_notification:
                metrics.time_to_answer.labels(agency).observe(given.answer.seconds_to_answer)
        else:
            response.status_code = http.HTTP_200_OK
        return AnswerOut.of(given.answer)

    @router.get("/notifications/{notification_id:uuid}/answers", response_model=pages.Page[AnswerOut])
    async def read_answers(notification_id: UUID, limit: int = pages.limit(50, 200),
                           cursor: str | None = pages.cursor(), caller: Caller = read_as) -> pages.Page[AnswerOut]:
        """The notification's answers, oldest first."""
        after = pages.decode(cursor, datetime, UUID)
        async with service.pool.acquire() as conn:
            found = await answers.notification(conn, notification_id)
            if found is None:
                raise Problem(404, "no such notification")
            if Role.AGENCY in caller.principal.roles and Role.AUDITOR not in caller.principal.roles:
                if found.agency != caller.principal.agency:
                    raise Problem(404, "no such notification")
            elif Role.AUDITOR not in caller.principal.roles:
                await caller.household(conn, found.household_id)
            page = await answers.of_notification(conn, notification_id, after, limit + 1)
            await caller.record(conn, "read", [found.household_id], answers.ANSWER_FIELDS)
        items = [AnswerOut.of(a) for a in page[:limit]]
        last = items[-1] if len(page) > limit else None
        return pages.Page[AnswerOut](items=items,
                                     next_cursor=pages.encode(last.answered_at, last.id) if last else None)

    return router
