"""HTTP entry points of proposals: the queue of changes from the field that wait for a decision, and the
decisions (approve applies the change, reject keeps the reason). How a change becomes a proposal is the
gate `proposals.submit_or_apply`, which the change routes pass through."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, StringConstraints

from ejsika_contracts import Contract
from ejsika_runtime import pages, scopes
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import FieldError, Problem, documented
from ejsika_runtime.service import Service

from . import households, members, proposals
from .changes_api import author_of, correlation
from .proposals import Status

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]

DECISION_RESPONSES = {
    403: documented("The caller's role may not do this, or may not decide this proposal (not its approver, "
                    "or its author)"),
    404: documented("No such proposal, or not the caller's to know about"),
    409: documented("Decided already, or the household changed since so that the change cannot apply"),
}


class ProposalOut(BaseModel):
    id: UUID
    request_id: UUID | None = Field(description="The app's id of the change, when it sent one.")
    household_id: UUID
    kind: str = Field(description="update, member_added, member_ended, member_moved, ...")
    payload: dict[str, Any] = Field(description="What the change would apply, as its route received it.")
    fields: list[str] = Field(description="The household fields it touches, as the approval rules name them.")
    base_version: int = Field(description="The household's version its author read.")
    status: Status
    approver: str = Field(description="The role that decides it (an operator of the programme may too).")
    proposed_by: str | None
    source: str = Field(description="Where it came from: app, visit, ...")
    reason: str | None = Field(description="Why, as its author said.")
    created_at: datetime
    decided_by: str | None
    decision_reason: str | None
    decided_at: datetime | None
    applied_version: int | None = Field(description="Once approved: the household's version with the change.")
    superseded_by: UUID | None = Field(description="The later proposal that made this one moot.")
    region_code: str = Field(description="The household's village when proposed.")
    programme: str


class Approval(Contract):
    reason: Reason | None = Field(default=None, description="Why, for the history.")


class Rejection(Contract):
    reason: Reason = Field(description="Why the change is not applied: kept with the proposal and in the history.")


@contextlib.contextmanager
def deciding() -> Iterator[None]:
    """The use cases' refusals as problem documents."""
    try:
        yield
    except proposals.ProposalNotFound:
        raise Problem(404, "no such proposal") from None
    except proposals.AlreadyDecided as decided:
        raise Problem(409, f"the proposal is {decided.status} already") from None
    except proposals.NotTheDecider as refused:
        raise Problem(403, str(refused)) from None
    except proposals.ProposalConflict as conflict:
        raise Problem(409, str(conflict), errors=[FieldError(field=v.field, rule=v.rule, reason=v.reason)
                                                  for v in conflict.violations] or None) from None
    except members.ConcurrentChange:
        raise Problem(409, "changed concurrently by another request; retry") from None


async def _seen(conn: asyncpg.Connection | asyncpg.Pool, caller: Caller, proposal_id: UUID) -> dict[str, Any]:
    """The proposal if the caller may see it; 404 otherwise, as if it did not exist."""
    proposal = await proposals.find(conn, proposal_id)
    scope = await scopes.find(conn, proposal["household_id"]) if proposal else None
    if scope is None or not caller.covers(scope) or not proposals.may_see(caller.principal, scope, proposal):
        raise Problem(404, "no such proposal")
    return proposal


def _position(cursor: str | None) -> tuple[datetime, UUID] | None:
    return pages.decode(cursor, datetime, UUID)


def routes(service: Service, nik_key: bytes) -> APIRouter:
    router = APIRouter(tags=["proposals"])
    read_as = service.access.allow(Role.PENDAMPING, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR,
                                   purpose="reviewing changes proposed to a family's data")
    decide_as = service.access.allow(Role.SUPERVISOR, Role.OPERATOR,
                                     purpose="deciding changes proposed to a family's data")

    @router.get("/proposals", response_model=pages.Page[ProposalOut])
    async def list_proposals(
        status: Status | None = Query(None, description="pending: the work queue; none: every status."),
        region_prefix: str | None = Query(None, pattern=r"^\d{2,10}$",
                                          description="Only households whose village code starts so, e.g. 3672."),
        household_id: UUID | None = Query(None, description="Only this household's proposals."),
        limit: int = pages.limit(), cursor: str | None = pages.cursor(), caller: Caller = read_as,
    ) -> pages.Page[ProposalOut]:
        """The proposals the caller may see, oldest first: a supervisor their area's, an operator their
        programme's, a pendamping their own, an auditor all."""
        async with service.pool.acquire() as conn:
            items, last = await proposals.page(conn, caller.principal, status=status, region_prefix=region_prefix,
                                               household_id=household_id, after=_position(cursor), limit=limit)
            await caller.record(conn, "read", list(dict.fromkeys(p["household_id"] for p in items)),
                                households.PERSONAL_FIELDS)
        return pages.Page[ProposalOut](
            items=[ProposalOut(**p) for p in items],
            next_cursor=pages.encode(last[0].isoformat(), str(last[1])) if last else None)

    @router.get("/proposals/{proposal_id:uuid}", response_model=ProposalOut,
                responses={404: DECISION_RESPONSES[404]})
    async def get_proposal(proposal_id: UUID, caller: Caller = read_as) -> ProposalOut:
        async with service.pool.acquire() as conn:
            proposal = await _seen(conn, caller, proposal_id)
            await caller.record(conn, "read", [proposal["household_id"]], households.PERSONAL_FIELDS)
        return ProposalOut(**proposal)

    async def decider(conn: asyncpg.Connection, caller: Caller, proposal_id: UUID, correlation_id: str | None,
                      reason: str | None) -> proposals.Decider:
        """Who decides, in the roles they reach the proposal's households in (every one of them: a move's
        target too)."""
        proposal = await _seen(conn, caller, proposal_id)
        own, *others = proposals.households_of(proposal)
        for household_id in others:
            await caller.household(conn, household_id)
        scope = await scopes.find(conn, own)
        return proposals.Decider(author_of(caller, correlation_id, reason), proposals.reaching(caller.principal, scope))

    @router.post("/proposals/{proposal_id:uuid}/approve", response_model=ProposalOut, responses=DECISION_RESPONSES)
    async def approve_proposal(
        proposal_id: UUID, decision: Approval | None = None,
        x_correlation_id: str | None = Depends(correlation), caller: Caller = decide_as,
    ) -> ProposalOut:
        """Apply the proposed change on the household as it is now, with the decider's reason in its history."""
        reason = decision.reason if decision else None
        with deciding():
            async with service.transaction() as uow:
                who = await decider(uow.conn, caller, proposal_id, x_correlation_id, reason)
                decided = await proposals.approve(uow, proposal_id, who, reason, nik_key)
                await caller.record(uow.conn, "write", proposals.households_of(decided), households.PERSONAL_FIELDS)
        return ProposalOut(**decided)

    @router.post("/proposals/{proposal_id:uuid}/reject", response_model=ProposalOut, responses=DECISION_RESPONSES)
    async def reject_proposal(
        proposal_id: UUID, decision: Rejection,
        x_correlation_id: str | None = Depends(correlation), caller: Caller = decide_as,
    ) -> ProposalOut:
        """Decide against the proposed change: nothing applies; the reason is kept."""
        with deciding():
            async with service.transaction() as uow:
                who = await decider(uow.conn, caller, proposal_id, x_correlation_id, decision.reason)
                decided = await proposals.reject(uow, proposal_id, who, decision.reason)
                await caller.record(uow.conn, "read", [decided["household_id"]], households.PERSONAL_FIELDS)
        return ProposalOut(**decided)

    return router
