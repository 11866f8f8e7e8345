"""HTTP entry points that change a registered household: each based on the version its author read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date
from typing import Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, Field

from ejsika_contracts import Contract, RelationChange, WelfareIndicators
from ejsika_contracts.events.household import EndKind, HealthInsurance, NikStatus, Relation
from ejsika_contracts.values import KkNumber, Nik, VillageCode
from ejsika_runtime import scopes, versions
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.problems import COMMON_RESPONSES, FieldError, Problem, documented
from ejsika_runtime.service import Service

from . import changes, households, members, proposals, registrations
from .api import STAFF, HouseholdOut, MemberIn
from .changes import Author

CHANGE_RESPONSES = {**versions.RESPONSES, 404: COMMON_RESPONSES[404], 422: COMMON_RESPONSES[422]}


class HouseholdUpdate(Contract):
    """The fields to change; those left out stay as they are."""

    region_code: VillageCode | None = None
    kk_number: KkNumber | None = None
    address: str | None = Field(default=None, min_length=1, max_length=500)
    welfare: WelfareIndicators | None = Field(
        default=None, description="A merge patch: the indicators given replace theirs, null = not observed.")
    pendamping_id: str | None = Field(default=None, max_length=64, description="Supervisors and operators only.")
    reason: str | None = Field(default=None, max_length=500, description="Why, for the history.")

    def fields(self) -> dict:
        given = self.model_dump(exclude_unset=True, exclude={"reason"})
        if "welfare" in given:
            given["welfare"] = self.welfare.model_dump(exclude_unset=True) if self.welfare else {}
        for name in ("region_code", "kk_number", "address"):
            if name in given and given[name] is None:
                raise Problem(422, f"{name} cannot be removed", errors=[FieldError(field=name, rule="required")])
        return given


def author_of(caller: Caller, correlation: str | None, reason: str | None) -> Author:
    try:
        correlation_id = UUID(correlation) if correlation else uuid4()
    except ValueError:
        raise Problem(400, "X-Correlation-Id must be a UUID") from None
    source = "operator" if Role.OPERATOR in caller.principal.roles else "app"
    return Author(caller.principal.subject, source, correlation_id, reason=reason)


def correlation(x_correlation_id: str | None = Header(default=None)) -> str | None:
    return x_correlation_id


@contextlib.contextmanager
def answering() -> Iterator[None]:
    """The use cases' refusals as problem documents."""
    try:
        yield
    except changes.HouseholdNotFound:
        raise Problem(404, "no such household") from None
    except changes.StaleVersion as stale:
        raise versions.stale(stale.current) from None
    except changes.ChangeRejected as rejected:
        raise Problem(422, "the change breaks the registry's rules: see errors",
                      errors=[FieldError(field=v.field, rule=v.rule, reason=v.reason) for v in rejected.violations]
                      ) from None


# The members of a household as the family changes (issue 7): the requests and their refusals.

MEMBER_FIELDS = tuple(f for f in households.PERSONAL_FIELDS if f.startswith("members."))
MEMBER_RESPONSES = {**CHANGE_RESPONSES, 404: documented("No such household, or no such active member in it"),
                    409: documented("A NIK is an active member's of another household (named), or a concurrent change")}


class MemberAddition(Contract):
    member: MemberIn
    reason: Literal["birth", "marriage_in", "correction"] = Field(
        description="Why the member joins; a member moving from another registered household is moved, not added.")
    effective_date: date = Field(description="When they joined (a birth: the birth date); not in the future.")


class MemberCorrection(Contract):
    """The member's fields to change; those left out stay as they are. The relation to or from the
    head changes with the head (POST /households/{household_id}/head)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    sex: Literal["F", "M"] | None = None
    birth_date: date | None = None
    nik: Nik | None = Field(default=None, description="A NIK given later (a newborn's), or null with nik_status.")
    nik_status: NikStatus | None = Field(
        default=None, description="Left out: a NIK given to a pending member makes it verified.")
    in_school: bool | None = None
    pregnant: bool | None = None
    disability: bool | None = None
    health_insurance: HealthInsurance | None = Field(
        default=None, description="The member's JKN cover; null: no longer known.")
    relation: Relation | None = None
    reason: str | None = Field(default=None, max_length=500, description="Why, for the history.")

    def fields(self) -> dict:
        given = self.model_dump(exclude_unset=True, exclude={"reason"})
        for name, value in given.items():
            if value is None and name not in ("nik", "health_insurance"):
                raise Problem(422, f"{name} cannot be removed", errors=[FieldError(field=name, rule="required")])
        return given


class MemberEnd(Contract):
    kind: EndKind = Field(description="died, married_out, moved_out (to no registered household) or correction.")
    effective_date: date = Field(description="When it ended: not in the future, not before the member's birth.")
    reason: str | None = Field(default=None, max_length=500, description="Why, for the history.")


class MemberMove(Contract):
    to_household_id: UUID
    to_version: int = Field(ge=1, description="The version of the target household read (its ETag): If-Match "
                                              "covers the household left; a stale one answers 409.")
    relation: Relation = Field(description="The member's relation to the head of the household they join.")
    effective_date: date
    reason: str | None = Field(default=None, max_length=500, description="Why, for the history.")


class HeadChange(Contract):
    member_id: UUID = Field(description="The member who becomes the head.")
    relations: list[RelationChange] = Field(
        min_length=1, max_length=30,
        description="Each member whose relation to the new head changes; the old head's is required.")
    kk_number: KkNumber = Field(description="The household's No. KK with its new head.")
    reason: str | None = Field(default=None, max_length=500, description="Why, for the history.")


class HouseholdSplitting(Contract):
    request_id: UUID = Field(description="Generated by the caller; a retried split answers the same result once made.")
    member_ids: list[UUID] = Field(min_length=1, max_length=30,
                                   description="The members who leave (not all, not the head).")
    member_id: UUID = Field(description="The new household's head, one of member_ids.")
    relations: list[RelationChange] = Field(
        default=[], max_length=30,
        description="The relation to the new head of each other member leaving; those left out keep theirs.")
    kk_number: KkNumber
    address: str = Field(min_length=1, max_length=500)
    region_code: VillageCode
    welfare: WelfareIndicators | None = Field(
        default=None, description="The new household's indicators; left out: those of the household split.")
    effective_date: date | None = Field(default=None, description="When they left; left out: today.")
    reason: str | None = Field(default=None, max_length=500, description="Why, for the history.")


class SplitOut(BaseModel):
    household_id: UUID = Field(description="The household split.")
    version: int = Field(description="Its version after the split.")
    new_household_id: UUID
    new_version: int


@contextlib.contextmanager
def answering_members() -> Iterator[None]:
    """The member use cases' refusals as problem documents (and those of every change)."""
    with answering():
        try:
            yield
        except members.MemberNotFound:
            raise Problem(404, "no such member in this household") from None
        except members.NikClash as clash:
            # The other household is named (a supervisor resolves the clash there), the person is not.
            raise Problem(409, str(clash), errors=[FieldError(field="nik", rule="nik_registered", reason=str(clash))]
                          ) from None
        except members.TargetStale as stale:
            raise Problem(409, f"the target household changed since it was read; its current version is "
                               f"{stale.current}", errors=[FieldError(field="to_version", rule="stale")]) from None
        except members.RequestIdTaken:
            raise Problem(409, "this request_id was used for another household") from None
        except members.ConcurrentChange:
            raise Problem(409, "a member was changed concurrently by another request; retry") from None


def routes(service: Service, nik_key: bytes) -> APIRouter:
    router = APIRouter(tags=["households"])
    change_as = service.access.allow(*STAFF, purpose="keeping a family's data up to date")

    @router.patch("/households/{household_id:uuid}", response_model=HouseholdOut,
                  responses={**CHANGE_RESPONSES, 202: proposals.PROPOSED_RESPONSE})
    async def update_household(
        household_id: UUID, update: HouseholdUpdate, response: Response,
        caller: Caller = change_as,  # first: a role that may not write learns it before any If-Match rule
        version: int = Depends(versions.expected_version), x_correlation_id: str | None = Depends(correlation),
    ) -> HouseholdOut:
        """Correct or update the household's address, village, No. KK, welfare indicators or pendamping."""
        given = update.fields()
        if "pendamping_id" in given and Role.SUPERVISOR not in caller.principal.roles \
                and Role.OPERATOR not in caller.principal.roles:
            raise Problem(403, "only a supervisor or an operator assigns a household to a pendamping")
        with answering():
            async with service.transaction() as uow:
                await caller.household(uow.conn, household_id)
                author = author_of(caller, x_correlation_id, update.reason)
                outcome = await proposals.submit_or_apply(
                    uow, caller, "update", household_id, version, given, author,
                    lambda: changes.update_household(uow, household_id, version, given, author))
                await caller.record(uow.conn, "write", [household_id], households.PERSONAL_FIELDS)
        if isinstance(outcome, proposals.Proposed):  # a welfare change from the field waits for its supervisor
            return proposals.accepted(outcome)
        versions.set_version(response, outcome.result["version"])
        return HouseholdOut.of(outcome.result)

    # The members (issue 7). Each takes its caller before If-Match: a role that may not write is told
    # so (403) before being asked for a version.

    def answer(response: Response, state: dict) -> HouseholdOut:
        versions.set_version(response, state["version"])
        return HouseholdOut.of(state)

    @router.post("/households/{household_id:uuid}/members", status_code=201, response_model=HouseholdOut,
                 responses={**MEMBER_RESPONSES, 202: proposals.PROPOSED_RESPONSE})
    async def add_member(
        household_id: UUID, addition: MemberAddition, response: Response, caller: Caller = change_as,
        version: int = Depends(versions.expected_version), x_correlation_id: str | None = Depends(correlation),
    ) -> HouseholdOut:
        """A member joins: a birth (the NIK may be pending), a marriage in, a correction. The new member
        is the last of `members`, with its own member_id."""
        with answering_members():
            async with service.transaction() as uow:
                await caller.household(uow.conn, household_id)
                author = author_of(caller, x_correlation_id, addition.reason)
                outcome = await proposals.submit_or_apply(
                    uow, caller, "member_added", household_id, version,
                    {"member": addition.member.model_dump(mode="json"), "reason": addition.reason,
                     "effective_date": addition.effective_date.isoformat()}, author,
                    lambda: members.add_member(uow, household_id, version, addition.member, addition.reason,
                                               addition.effective_date, author, nik_key))
                await caller.record(uow.conn, "write", [household_id], MEMBER_FIELDS)
        if isinstance(outcome, proposals.Proposed):
            return proposals.accepted(outcome)
        return answer(response, outcome.result)

    @router.patch("/households/{household_id:uuid}/members/{member_id:uuid}", response_model=HouseholdOut,
                  responses=MEMBER_RESPONSES)
    async def update_member(
        household_id: UUID, member_id: UUID, correction: MemberCorrection, response: Response,
        caller: Caller = change_as, version: int = Depends(versions.expected_version),
        x_correlation_id: str | None = Depends(correlation),
    ) -> HouseholdOut:
        """Correct a member's data, or give the NIK that was pending; the member is checked anew."""
        given = correction.fields()
        with answering_members():
            async with service.transaction() as uow:
                await caller.household(uow.conn, household_id)
                state = await members.update_member(uow, household_id, member_id, version, given,
                                                    author_of(caller, x_correlation_id, correction.reason), nik_key)
                await caller.record(uow.conn, "write", [household_id], MEMBER_FIELDS)
        return answer(response, state)

    @router.post("/households/{household_id:uuid}/members/{member_id:uuid}/end", response_model=HouseholdOut,
                 responses=CHANGE_RESPONSES | {404: MEMBER_RESPONSES[404], 202: proposals.PROPOSED_RESPONSE})
    async def end_member(
        household_id: UUID, member_id: UUID, end: MemberEnd, response: Response, caller: Caller = change_as,
        version: int = Depends(versions.expected_version), x_correlation_id: str | None = Depends(correlation),
    ) -> HouseholdOut:
        """A membership ends: a death, a marriage out, a move to no registered household, a correction.
        The head ends only after a head change; the last member never."""
        with answering_members():
            async with service.transaction() as uow:
                await caller.household(uow.conn, household_id)
                author = author_of(caller, x_correlation_id, end.reason)
                outcome = await proposals.submit_or_apply(
                    uow, caller, "member_ended", household_id, version,
                    {"member_id": str(member_id), "kind": end.kind, "effective_date": end.effective_date.isoformat()},
                    author, lambda: members.end_member(uow, household_id, member_id, version, end.kind,
                                                       end.effective_date, author))
                await caller.record(uow.conn, "write", [household_id], MEMBER_FIELDS)
        if isinstance(outcome, proposals.Proposed):
            return proposals.accepted(outcome)
        return answer(response, outcome.result)

    @router.post("/households/{household_id:uuid}/members/{member_id:uuid}/move", response_model=HouseholdOut,
                 responses=MEMBER_RESPONSES | {409: documented(
                     "The target household changed since to_version (its current version is in the detail), "
                     "or a concurrent change"), 202: proposals.PROPOSED_RESPONSE})
    async def move_member(
        household_id: UUID, member_id: UUID, move: MemberMove, response: Response, caller: Caller = change_as,
        version: int = Depends(versions.expected_version), x_correlation_id: str | None = Depends(correlation),
    ) -> HouseholdOut:
        """The member moves to another registered household the caller also covers, in one transaction:
        a new membership (a new member_id) there, this one ended. Answers the household left; read the
        target for its new state."""
        with answering_members():
            async with service.transaction() as uow:
                await caller.household(uow.conn, household_id)
                await caller.household(uow.conn, move.to_household_id)
                author = author_of(caller, x_correlation_id, move.reason)
                outcome = await proposals.submit_or_apply(
                    uow, caller, "member_moved", household_id, version,
                    {"member_id": str(member_id), "to_household_id": str(move.to_household_id),
                     "relation": move.relation, "effective_date": move.effective_date.isoformat()}, author,
                    lambda: members.move_member(uow, household_id, member_id, version, move.to_household_id,
                                                move.to_version, move.relation, move.effective_date, author, nik_key))
                await caller.record(uow.conn, "write", [household_id, move.to_household_id], MEMBER_FIELDS)
        if isinstance(outcome, proposals.Proposed):
            return proposals.accepted(outcome)
        return answer(response, outcome.result[0])

    @router.post("/households/{household_id:uuid}/head", response_model=HouseholdOut, responses=CHANGE_RESPONSES)
    async def change_head(
        household_id: UUID, change: HeadChange, response: Response, caller: Caller = change_as,
        version: int = Depends(versions.expected_version), x_correlation_id: str | None = Depends(correlation),
    ) -> HouseholdOut:
        """Another member heads the household, with the others' relations to them and the new No. KK."""
        with answering_members():
            async with service.transaction() as uow:
                await caller.household(uow.conn, household_id)
                state = await members.change_head(
                    uow, household_id, version, change.member_id, [(r.member_id, r.relation) for r in change.relations],
                    change.kk_number, author_of(caller, x_correlation_id, change.reason))
                await caller.record(uow.conn, "write", [household_id], ("kk_number", "members.relation"))
        return answer(response, state)

    @router.post("/households/{household_id:uuid}/split", status_code=201, response_model=SplitOut,
                 responses={**CHANGE_RESPONSES,
                            200: {"model": SplitOut,
                                  "description": "Already split by an earlier call of this request_id"},
                            409: documented("The request_id was used for another household, or a concurrent change")})
    async def split_household(
        household_id: UUID, split: HouseholdSplitting, response: Response, caller: Caller = change_as,
        version: int = Depends(versions.expected_version), x_correlation_id: str | None = Depends(correlation),
    ) -> SplitOut:
        """Members leave to form a household of their own (new No. KK, address, village), which keeps
        this one's programme and pendamping and is registered like any other."""
        with answering_members():
            async with service.transaction() as uow:
                source = await caller.household(uow.conn, household_id)
                new_id = registrations.household_id_for(split.request_id)
                if not caller.covers(scopes.HouseholdScope(new_id, source.programme, split.region_code,
                                                           source.pendamping_id)):
                    raise Problem(422, "the new household would be outside your caseload, area or programme",
                                  errors=[FieldError(field="region_code", rule="scope")])
                done = await members.split_household(
                    uow, household_id, version,
                    members.NewHousehold(split.request_id, split.kk_number, split.address, split.region_code,
                                         split.welfare),
                    split.member_ids, split.member_id, [(r.member_id, r.relation) for r in split.relations],
                    split.effective_date or programme_today(), author_of(caller, x_correlation_id, split.reason),
                    nik_key)
                if done.created:
                    await caller.record(uow.conn, "write", [household_id, done.new_household_id],
                                        households.PERSONAL_FIELDS)
        if not done.created:
            response.status_code = 200
        return SplitOut(household_id=done.household_id, version=done.version, new_household_id=done.new_household_id,
                        new_version=done.new_version)

    return router
