"""Use cases: changes that wait for a supervisor's decision (proposals), and the gate the routes pass through.

A route hands its change to `submit_or_apply`: when the rules in force (`domain.approval`) say the
caller's change needs approval, it is checked as if applied, stored as a proposal and answered 202;
otherwise it applies at once. `approve` applies a proposal through the use case of its kind (the
`APPLIERS`), on the household as it is then; `reject` applies nothing. Each step is a row of the
household's history, so the proposal and its decision are in its one timeline.

The history keeps one row per household version (UNIQUE (household_id, version)), and a proposal or a
decision changes no field of the household. They take a version of their own all the same, with no
changes: the timeline stays one sequence, `history.as_of` has nothing to undo for them, and an app
that read the household before a proposal was made reads it again (412) and sees it pending.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4

import asyncpg
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ejsika_contracts import HouseholdMember
from ejsika_runtime import scopes, versions
from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Principal, Role
from ejsika_runtime.unit_of_work import UnitOfWork

from . import changes, history, members
from .changes import Author
from .domain import approval
from .domain.approval import ApprovalRules
from .domain.registration import Violation

Status = Literal["pending", "approved", "rejected", "superseded"]

# The rules in force: the default file until `use` names another (the setting EJSIKA_APPROVAL_RULES).
_in_force: list[ApprovalRules] = []


def use(path: Path | None) -> ApprovalRules:
    """Decide by the rules of `path` from now on (None: the default file)."""
    _in_force[:] = [approval.load(path)]
    return _in_force[0]


def rules() -> ApprovalRules:
    return _in_force[0] if _in_force else use(None)


@dataclass(frozen=True)
class Applied:
    """The change applied at once: what its use case answered."""

    result: Any


class Proposed(BaseModel):
    """A change stored as a proposal, waiting for its approver (answered 202 Accepted)."""

    id: UUID
    status: Literal["pending"] = "pending"
    kind: str
    household_id: UUID
    approver: str = Field(description="The role that decides it, e.g. supervisor.")
    version: int = Field(exclude=True)  # the household's version now, for the ETag


# How a change route documents and gives the answer of a change that became a proposal.
PROPOSED_RESPONSE = {
    "model": Proposed,
    "description": "The change waits for a decision (GET /proposals/{id}); nothing changed yet. The ETag is the "
                   "household's version now: the proposal took one in its history.",
    "headers": {"ETag": {"description": "The household's version", "schema": {"type": "string"}}},
}


def accepted(proposed: Proposed) -> JSONResponse:
    return JSONResponse(proposed.model_dump(mode="json"), status_code=202,
                        headers={"ETag": versions.etag(proposed.version)})


class ProposalNotFound(LookupError):
    pass


class AlreadyDecided(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(f"the proposal is {status} already")
        self.status = status


class NotTheDecider(PermissionError):
    """The caller reaches the household but may not decide this proposal."""


class ProposalConflict(Exception):
    """The household changed since the proposal in a way it cannot be applied over; nothing was changed."""

    def __init__(self, reason: str, violations: Collection[Violation] = ()) -> None:
        super().__init__(reason)
        self.violations = tuple(violations)


class RequestIdTaken(Exception):
    """The request id already proposed another change."""


@dataclass(frozen=True)
class Decider:
    author: Author  # who decides, from where, in which request; `reason` is the decision's
    roles: frozenset[str]  # the roles in which they reach the household (`reaching`)


def reaching(principal: Principal, scope: scopes.HouseholdScope) -> frozenset[Role]:
    """The roles in which `principal` reaches this household: a pendamping of it, its area's supervisor, ..."""
    return frozenset(role for role in principal.roles
                     if scopes.covers(replace(principal, roles=frozenset({role})), scope))


# How an approved proposal applies, by kind: (uow, household_id, payload, author, nik_key) -> the use
# case's answer. The payload is JSON, as the route received it:
#   update        the fields of HouseholdUpdate.fields() (welfare as a merge patch)
#   member_added  {"member": {HouseholdMember without member_id}, "reason": JoinReason, "effective_date": "YYYY-MM-DD"}
#   member_ended  {"member_id": "...", "kind": EndKind, "effective_date": "YYYY-MM-DD"}
#   member_moved  {"member_id": "...", "to_household_id": "...", "relation": Relation, "effective_date": "YYYY-MM-DD"}
# Each applies on the household's current version: what changed meanwhile is checked by its rules.
Applier = Callable[[UnitOfWork, UUID, dict[str, Any], Author, bytes], Awaitable[Any]]


async def _update(uow: UnitOfWork, household_id: UUID, payload: dict[str, Any], author: Author, _: bytes) -> Any:
    return await changes.update_household(uow, household_id, None, payload, author)


async def _member_added(uow: UnitOfWork, household_id: UUID, payload: dict[str, Any], author: Author,
                        nik_key: bytes) -> Any:
    member = HouseholdMember.model_validate({**payload["member"], "member_id": uuid4()})
    return await members.add_member(uow, household_id, None, member, payload["reason"],
                                    date.fromisoformat(payload["effective_date"]), author, nik_key)


async def _member_ended(uow: UnitOfWork, household_id: UUID, payload: dict[str, Any], author: Author, _: bytes) -> Any:
    return await members.end_member(uow, household_id, UUID(payload["member_id"]), None, payload["kind"],
                                    date.fromisoformat(payload["effective_date"]), author)


async def _member_moved(uow: UnitOfWork, household_id: UUID, payload: dict[str, Any], author: Author,
                        nik_key: bytes) -> Any:
    return await members.move_member(uow, household_id, UUID(payload["member_id"]), None,
                                     UUID(payload["to_household_id"]), None, payload["relation"],
                                     date.fromisoformat(payload["effective_date"]), author, nik_key)


APPLIERS: dict[str, Applier] = {
    "update": _update, "member_added": _member_added, "member_ended": _member_ended, "member_moved": _member_moved,
}


def households_of(proposal: dict[str, Any]) -> list[UUID]:
    """Every household a proposal would change: its own, and for a move the one the member joins."""
    target = proposal["payload"].get("to_household_id") if proposal["kind"] == "member_moved" else None
    return [proposal["household_id"], *([UUID(target)] if target else [])]


async def _lock(conn: asyncpg.Connection, household_ids: list[UUID]) -> dict[str, Any]:
    """Lock the households a change touches, in one order whichever way (as `members.move_member` does: two
    opposite moves cannot deadlock); answer the state of the first (the change's own household)."""
    states = {hid: await changes.locked(conn, hid, None) for hid in sorted(set(household_ids))}
    return states[household_ids[0]]


class _DryRun(Exception):
    pass


async def submit_or_apply(uow: UnitOfWork, caller: Caller, kind: str, household_id: UUID,
                          expected_version: int | None, payload: dict[str, Any], author: Author,
                          apply: Callable[[], Awaitable[Any]], request_id: UUID | None = None) -> Applied | Proposed:
    """Apply the change at once (`apply`), or store it as a proposal when the rules say it needs approval.

    A proposal is checked as if applied (`apply` in a savepoint, rolled back): it is refused then with
    the same answer as the change itself (422 for a broken rule, 412 for a stale version, ...), not
    days later at its approval. A change that would change nothing applies at once (it does nothing).
    """
    scope = await caller.household(uow.conn, household_id)
    return await submit_or_apply_as(uow, reaching(caller.principal, scope), kind, household_id, expected_version,
                                    payload, author, apply, request_id)


async def submit_or_apply_as(uow: UnitOfWork, roles: Collection[str], kind: str, household_id: UUID,
                             expected_version: int | None, payload: dict[str, Any], author: Author,
                             apply: Callable[[], Awaitable[Any]], request_id: UUID | None = None
                             ) -> Applied | Proposed:
    """`submit_or_apply` for an author whose reach of the household is settled already: a caller reaching
    it in `roles`, or a service applying what an event reports (a visit: no roles, the rules name its
    source). HouseholdNotFound when there is no such household."""
    approver = approval.needs_approval(rules(), roles, kind, approval.fields_of(kind, payload), author.source)
    if approver is None:
        return Applied(await apply())
    state = await _lock(uow.conn, households_of({"household_id": household_id, "kind": kind, "payload": payload}))
    if request_id is not None and (earlier := await _by_request(uow.conn, request_id)) is not None:
        if earlier["household_id"] != household_id or earlier["proposed_by"] != author.actor:
            raise RequestIdTaken()
        return Proposed(id=earlier["id"], kind=earlier["kind"], household_id=household_id,
                        approver=earlier["approver"], version=state["version"])
    if expected_version is not None and state["version"] != expected_version:
        raise changes.StaleVersion(state["version"])
    if not await _would_change(uow, household_id, state["version"], apply):
        return Applied(await apply())
    return await propose(uow, household_id, kind, payload, state["version"], author, approver, request_id)


async def _would_change(uow: UnitOfWork, household_id: UUID, version: int, apply: Callable[[], Awaitable[Any]]) -> bool:
    """Whether `apply` changes the household, found by applying it and rolling it back (its events too)."""
    emitted = len(uow.events)
    try:
        async with uow.conn.transaction():  # a savepoint
            await apply()
            changed = await uow.conn.fetchval("SELECT version FROM households WHERE id = $1", household_id) != version
            raise _DryRun()
    except _DryRun:
        del uow.events[emitted:]
    return changed


async def propose(uow: UnitOfWork, household_id: UUID, kind: str, payload: dict[str, Any], base_version: int,
                  author: Author, approver: str, request_id: UUID | None = None) -> Proposed:
    """Store a proposal on the household (locked by the caller, at `base_version`) and its history row.

    Older pending proposals that this one wholly rewrites (the same indicators proposed again, say
    after a retry) are superseded by it: approving them after it would only undo it.
    """
    proposal_id = uuid4()
    fields = approval.fields_of(kind, payload)
    region_code, programme = await uow.conn.fetchrow(
        "SELECT region_code, programme FROM households WHERE id = $1", household_id)
    try:
        await uow.conn.execute(
            "INSERT INTO proposals (id, request_id, household_id, kind, payload, fields, base_version, proposed_by,"
            " source, reason, correlation_id, approver, region_code, programme)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            proposal_id, request_id, household_id, kind, json.dumps(history.jsonable(payload)), fields, base_version,
            author.actor, author.source, author.reason, author.correlation_id, str(approver), region_code, programme)
    except asyncpg.UniqueViolationError:  # the same request id, proposing on another household at this moment
        raise RequestIdTaken() from None
    superseded = await _supersede(uow.conn, household_id, proposal_id, kind, payload)
    version = await changes.next_version(uow.conn, household_id)
    detail = {"proposal_id": proposal_id, "kind": kind, "fields": fields, "approver": str(approver),
              **({"supersedes": superseded} if superseded else {})}
    await history.write(uow.conn, [history.Change(household_id, version, "proposal_submitted", {}, author.source,
                                                  author.actor, proposal_id, author.reason, detail)])
    return Proposed(id=proposal_id, kind=kind, household_id=household_id, approver=str(approver), version=version)


async def _supersede(conn: asyncpg.Connection, household_id: UUID, proposal_id: UUID, kind: str,
                     payload: dict[str, Any]) -> list[UUID]:
    wanted = approval.touched(kind, payload)
    if not wanted:
        return []
    pending = await conn.fetch("SELECT id, payload FROM proposals WHERE household_id = $1 AND kind = $2"
                               " AND status = 'pending' AND id <> $3 FOR UPDATE", household_id, kind, proposal_id)
    older = [r["id"] for r in pending if approval.touched(kind, json.loads(r["payload"])) <= wanted]
    if older:
        await conn.execute(
            "UPDATE proposals SET status = 'superseded', superseded_by = $2, decided_at = now(),"
            " decision_reason = 'superseded by a later proposal of the same change' WHERE id = ANY($1::uuid[])",
            older, proposal_id)
    return older


async def approve(uow: UnitOfWork, proposal_id: UUID, decider: Decider, reason: str | None,
                  nik_key: bytes) -> dict[str, Any]:
    """Apply a pending proposal on the household as it is now; answer the decided proposal. (`nik_key`: the
    NIK's keyed hash, for a member who joins.)

    The applied change names the proposal as its cause, its author as actor and the source
    `proposal`; the approval is the next history row, with the decider and their reason.
    ProposalConflict (nothing changed) when the household changed since in a way it cannot apply over.
    """
    proposal = await _pending(uow.conn, proposal_id, decider)
    household_id = proposal["household_id"]
    later = await uow.conn.fetch(
        "SELECT changes FROM household_history WHERE household_id = $1 AND version > $2",
        household_id, proposal["base_version"])
    overtaken = approval.overtaken(proposal["kind"], proposal["payload"], [json.loads(r["changes"]) for r in later])
    if overtaken:
        raise ProposalConflict(f"changed since the proposal was made: {', '.join(overtaken)}; reject it and "
                               "propose anew if still needed")
    author = Author(proposal["proposed_by"], "proposal", proposal["correlation_id"], proposal_id, proposal["reason"])
    try:
        await APPLIERS[proposal["kind"]](uow, household_id, proposal["payload"], author, nik_key)
    except changes.ChangeRejected as rejected:
        raise ProposalConflict("the household changed since the proposal: the change breaks its rules now",
                               rejected.violations) from None
    except (members.MemberNotFound, changes.HouseholdNotFound):
        raise ProposalConflict("a member or household the proposal names is no longer there") from None
    except members.NikClash as clash:
        raise ProposalConflict(str(clash)) from None
    applied = await uow.conn.fetchval("SELECT version FROM households WHERE id = $1", household_id)
    return await _decide(uow.conn, proposal, "approved", decider, reason, applied)


async def reject(uow: UnitOfWork, proposal_id: UUID, decider: Decider, reason: str) -> dict[str, Any]:
    """Decide against a pending proposal: nothing applies; the reason is kept with it and in the history."""
    proposal = await _pending(uow.conn, proposal_id, decider)
    return await _decide(uow.conn, proposal, "rejected", decider, reason, None)


async def _pending(conn: asyncpg.Connection, proposal_id: UUID, decider: Decider) -> dict[str, Any]:
    """The proposal, locked, if it waits for this decider. Its households are locked first, as every
    change of them does, so that a decision and a change of the household cannot deadlock."""
    found = await find(conn, proposal_id)
    if found is None:
        raise ProposalNotFound(proposal_id)
    await _lock(conn, households_of(found))
    proposal = _proposal(await conn.fetchrow("SELECT * FROM proposals WHERE id = $1 FOR UPDATE", proposal_id))
    if proposal["status"] != "pending":
        raise AlreadyDecided(proposal["status"])
    if not approval.may_decide(rules(), decider.roles, proposal["approver"]):
        raise NotTheDecider(f"this proposal is for a {proposal['approver']} of the household to decide")
    if proposal["proposed_by"] is not None and proposal["proposed_by"] == decider.author.actor:
        raise NotTheDecider("a proposal is decided by someone other than its author")
    return proposal


async def _decide(conn: asyncpg.Connection, proposal: dict[str, Any], status: Status, decider: Decider,
                  reason: str | None, applied_version: int | None) -> dict[str, Any]:
    household_id, author = proposal["household_id"], decider.author
    version = await changes.next_version(conn, household_id)
    detail = {"proposal_id": proposal["id"], "kind": proposal["kind"], "fields": proposal["fields"],
              "proposed_by": proposal["proposed_by"],
              **({"applied_version": applied_version} if applied_version is not None else {})}
    await history.write(conn, [history.Change(household_id, version, f"proposal_{status}", {}, author.source,
                                              author.actor, proposal["id"], reason, detail)])
    row = await conn.fetchrow(
        "UPDATE proposals SET status = $2, decided_by = $3, decision_reason = $4, decided_at = now(),"
        " applied_version = $5 WHERE id = $1 RETURNING *",
        proposal["id"], status, author.actor, reason, applied_version)
    return _proposal(row)


async def find(conn: asyncpg.Connection | asyncpg.Pool, proposal_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM proposals WHERE id = $1", proposal_id)
    return _proposal(row) if row else None


def may_see(principal: Principal, scope: scopes.HouseholdScope, proposal: dict[str, Any]) -> bool:
    """Whether a caller who reaches the household may see this proposal: a pendamping sees their own."""
    roles = reaching(principal, scope)
    own = proposal["proposed_by"] == principal.subject
    return bool(roles - {Role.PENDAMPING}) or (Role.PENDAMPING in roles and own)


async def page(conn: asyncpg.Connection | asyncpg.Pool, principal: Principal, *, status: Status | None = None,
               region_prefix: str | None = None, household_id: UUID | None = None,
               after: tuple[datetime, UUID] | None = None, limit: int = 50
               ) -> tuple[list[dict[str, Any]], tuple[datetime, UUID] | None]:
    """The proposals `principal` may see, oldest first, as `may_see` decides for each (by the household's
    scope now, so a list and a read agree); and the position the next page starts after."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = [_visible(principal, arg)]
    if status is not None:
        where.append(f"p.status = {arg(status)}")
    if region_prefix is not None:
        where.append(f"starts_with(s.region_code, {arg(region_prefix)})")
    if household_id is not None:
        where.append(f"p.household_id = {arg(household_id)}")
    if after is not None:
        where.append(f"(p.created_at, p.id) > ({arg(after[0])}, {arg(after[1])})")
    rows = await conn.fetch(
        "SELECT p.* FROM proposals p JOIN household_scope s ON s.household_id = p.household_id"
        f" WHERE {' AND '.join(where)} ORDER BY p.created_at, p.id LIMIT {arg(limit + 1)}", *args)
    items = [_proposal(r) for r in rows[:limit]]
    return items, ((items[-1]["created_at"], items[-1]["id"]) if len(rows) > limit else None)


def _visible(principal: Principal, arg: Callable[[Any], str]) -> str:
    """`may_see` as SQL over proposals p and household_scope s: scopes.covers, a pendamping's own only."""
    roles = principal.roles
    if Role.AUDITOR in roles:
        return "true"
    reach = []
    if Role.OPERATOR in roles and principal.programme:
        reach.append(f"s.programme = {arg(principal.programme)}")
    if Role.SUPERVISOR in roles and principal.area:
        reach.append(f"starts_with(s.region_code, {arg(principal.area)})")
    if Role.PENDAMPING in roles:
        subject = arg(principal.subject)
        reach.append(f"(s.pendamping_id = {subject} AND p.proposed_by = {subject})")
    return f"({' OR '.join(reach)})" if reach else "false"


async def _by_request(conn: asyncpg.Connection, request_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM proposals WHERE request_id = $1", request_id)
    return _proposal(row) if row else None


def _proposal(row: asyncpg.Record) -> dict[str, Any]:
    return {**dict(row), "payload": json.loads(row["payload"])}
