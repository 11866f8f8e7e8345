"""HTTP entry points of the review of likely duplicates: the queue of pairs, and an operator's decision
on each (merge or dismiss).

A pair shows two people's names and birth dates, and a decision writes to both households: a caller
reaches a pair only when it covers both households (an auditor, every pair), and is answered 404
otherwise, as if the pair did not exist.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ejsika_contracts import Contract
from ejsika_runtime import pages, scopes
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import COMMON_RESPONSES, FieldError, Problem, documented
from ejsika_runtime.service import Service

from . import duplicates
from .changes_api import answering, author_of, correlation
from .domain.duplicates import Reason, Status, Undecidable

# What a reviewer reads of each member of a pair, and what a decision writes, for the record of processing.
REVIEW_FIELDS = ("members.name", "members.birth_date", "members.nik_status")
DECISION_FIELDS = ("members.duplicate_review",)
MERGE_FIELDS = (*DECISION_FIELDS, "members.ended_at", "members.end_kind")

DECISION_RESPONSES = {
    404: COMMON_RESPONSES[404],
    409: documented("The pair was decided already, or one of its members is no longer an active member"),
    422: COMMON_RESPONSES[422],
}


class PairMember(BaseModel):
    household_id: UUID
    member_id: UUID
    name: str
    birth_date: date
    nik_status: Literal["verified", "pending", "unmatched"]
    active: bool = Field(description="Still an active member of the household (false once they left or were merged).")
    region_code: str = Field(description="The household's village.")


class DuplicateOut(BaseModel):
    id: UUID
    status: Status
    score: float = Field(description="How alike the two names are, 0..1.")
    reasons: list[Reason] = Field(description="Why the pair is proposed: same_birth_date, same_kecamatan (the "
                                              "same or a neighbouring village, approximated), similar_names, "
                                              "initials_expanded, and nik_missing or nik_differs.")
    members: list[PairMember] = Field(min_length=2, max_length=2)
    found_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    kept_member_id: UUID | None = Field(description="For a merged pair: the member kept; the other's membership ended.")


class Dismissal(Contract):
    reason: str = Field(min_length=1, max_length=500, description="Why these are two people, for the record.")


class Merge(Contract):
    keep_member_id: UUID = Field(description="The member of the pair who stays; the other's membership ends.")
    reason: str = Field(min_length=1, max_length=500, description="Why these are one person, for the history.")




@contextlib.contextmanager
def deciding() -> Iterator[None]:
    """The refusals of a decision as problem documents (and the member rules' through `answering`)."""
    try:
        with answering():
            yield
    except duplicates.CandidateNotFound:
        raise Problem(404, "no such duplicate candidate") from None
    except duplicates.AlreadyDecided as decided:
        raise Problem(409, str(decided)) from None
    except duplicates.MemberGone:
        raise Problem(409, "a member of this pair is no longer an active member: dismiss the pair") from None
    except Undecidable as undecidable:
        raise Problem(422, undecidable.reason, errors=[
            FieldError(field=undecidable.field, rule=undecidable.rule, reason=undecidable.reason)]) from None


def routes(service: Service) -> APIRouter:
    router = APIRouter(tags=["duplicates"])
    review_as = service.access.allow(Role.OPERATOR, Role.SUPERVISOR, Role.AUDITOR,
                                     purpose="reviewing likely duplicate registrations")
    decide_as = service.access.allow(Role.OPERATOR, purpose="resolving likely duplicate registrations")

    async def covered(conn, caller: Caller, candidate_id: UUID) -> tuple[UUID, UUID]:
        """The pair's households if the caller covers both; 404 otherwise."""
        pair = await conn.fetchrow("SELECT household_a, household_b FROM duplicate_candidates WHERE id = $1",
                                   candidate_id)
        found = [await scopes.find(conn, pair[k]) for k in ("household_a", "household_b")] if pair else []
        if not found or not all(s is not None and caller.covers(s) for s in found):
            raise Problem(404, "no such duplicate candidate")
        return pair["household_a"], pair["household_b"]

    @router.get("/duplicates", response_model=pages.Page[DuplicateOut])
    async def list_duplicates(
        status: Status = Query("open", description="open (to review), merged or dismissed."),
        region_prefix: str | None = Query(None, pattern=r"^\d{2,10}$",
                                          description="Digits a village code of either household starts with."),
        limit: int = pages.limit(), cursor: str | None = pages.cursor(), caller: Caller = review_as,
    ) -> pages.Page[DuplicateOut]:
        """Pairs of active members of different households who may be one person: the same birth
        date, the same kecamatan and similar names, with the NIK missing or different."""
        async with service.pool.acquire() as conn:
            items, last = await duplicates.page(conn, caller.principal, status, region_prefix, (pages.decode(cursor, UUID) or (None,))[0], limit)
            await caller.record(conn, "read", {m["household_id"] for i in items for m in i["members"]}, REVIEW_FIELDS)
        return pages.Page[DuplicateOut](items=items, next_cursor=pages.encode(str(last)) if last else None)

    @router.post("/duplicates/{candidate_id:uuid}/dismiss", response_model=DuplicateOut, responses=DECISION_RESPONSES)
    async def dismiss(
        candidate_id: UUID, dismissal: Dismissal, x_correlation_id: str | None = Depends(correlation),
        caller: Caller = decide_as,
    ) -> DuplicateOut:
        """Two people after all: the pair is closed and never proposed again; no household changes."""
        author = author_of(caller, x_correlation_id, dismissal.reason)
        with deciding():
            async with service.transaction() as uow:
                households = await covered(uow.conn, caller, candidate_id)
                await duplicates.dismiss(uow, candidate_id, author)
                await caller.record(uow.conn, "write", households, DECISION_FIELDS)
                decided = await duplicates.one(uow.conn, candidate_id)
        return DuplicateOut(**decided)

    @router.post("/duplicates/{candidate_id:uuid}/merge", response_model=DuplicateOut, responses=DECISION_RESPONSES)
    async def merge(
        candidate_id: UUID, merge: Merge, x_correlation_id: str | None = Depends(correlation),
        caller: Caller = decide_as,
    ) -> DuplicateOut:
        """One person: the other member's membership ends as a correction (member.ended), with a
        history row naming this pair on both households. The head of a household with other members
        cannot be the one ended (change the head first): 422."""
        author = author_of(caller, x_correlation_id, merge.reason)
        with deciding():
            async with service.transaction() as uow:
                households = await covered(uow.conn, caller, candidate_id)
                await duplicates.merge(uow, candidate_id, merge.keep_member_id, author)
                await caller.record(uow.conn, "write", households, MERGE_FIELDS)
                decided = await duplicates.one(uow.conn, candidate_id)
        return DuplicateOut(**decided)

    return router
