"""Use case: the registry applies what a pendamping's visit observed of the household's condition.

Monitoring's `visit.recorded` may report that the family's welfare indicators changed, that a child
was born, or that a member died, married out or moved away. Each goes through the use case and the
gate of the same change made over HTTP (`proposals.submit_or_apply_as`, the appliers of
`proposals.APPLIERS`), with the visit as its source and the pendamping as its author: by the shipped
rules it waits for a supervisor as a proposal; where a programme's rules let visits apply at once, it
applies with the visit's event as its cause. A visit has no role of its own: the rules name its
source (domain/approval.py).

Each change's outcome is kept in `visit_applications`, keyed by the visit and the change's place in
it: the same visit uploaded again (a new event, the same visit_id) changes nothing, and what became
of every observation stays known. A change the registry refuses (a member who left already, a
household it does not know, a broken rule) is kept there with its reason and never raised: the visit
is monitoring's fact, and one wrong observation must neither block the partition nor dead-letter
the rest of the visit.

Visits arrive late and out of order: welfare indicators that a visit captured later reported already
are not overwritten by an earlier one (ordered by `captured_at`, not by arrival).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

import asyncpg

from ejsika_contracts import HouseholdCondition, VisitRecorded
from ejsika_runtime import processing
from ejsika_runtime.consumer import Handler
from ejsika_runtime.programme_time import programme_date
from ejsika_runtime.unit_of_work import UnitOfWork

from . import changes, households, members, proposals
from .changes import Author
from .domain import approval

log = logging.getLogger(__name__)

PROCESSOR = processing.Processor("registry", "service")
PURPOSE = "applying a visit's observations"
CHANNEL = f"event {VisitRecorded.event_type}"
MEMBER_FIELDS = tuple(f for f in households.PERSONAL_FIELDS if f.startswith("members."))
VISIT_ROLES: frozenset[str] = frozenset()  # a visit reaches the household as nobody's role: its source decides

# How long the broker gathers visits for a batch: nobody waits on the registry taking a visit in (by the
# shipped rules its changes wait for a supervisor), and one visit a batch cost a fetch, a transaction and an
# offset commit each (at 200 visits/s, most of the registry's CPU). Kafka's own wait for an idle topic, so an
# idle consumer fetches no more often than before.
GATHER_MS = 500

# What the registry refuses to apply, as a rule code (never a value): kept, logged, and the visit goes on.
REFUSALS = (changes.HouseholdNotFound, changes.ChangeRejected, members.MemberNotFound, members.NikClash,
            proposals.RequestIdTaken)


@dataclass(frozen=True)
class Reported:
    """One change a visit reports, as the proposals' appliers take it."""

    key: str  # its place in the visit: welfare, births/<i>, left/<i>
    kind: str  # update, member_added, member_ended
    payload: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    change: Reported
    outcome: str  # applied, proposed, unchanged, refused
    version: int | None = None
    proposal_id: UUID | None = None
    reason: str | None = None


def reported(condition: HouseholdCondition) -> list[Reported]:
    """The changes a visit's condition reports, in the contract's order (welfare, births, departures).

    Welfare is a merge patch of the indicators observed: one left out (null) was not observed and
    keeps its value (an event read from the broker has every indicator, the unobserved ones null).
    """
    found = []
    welfare = condition.welfare.model_dump(exclude_none=True) if condition.welfare else {}
    if welfare:
        found.append(Reported("welfare", "update", {"welfare": welfare}))
    for i, birth in enumerate(condition.births):
        born = birth.birth_date.isoformat()
        found.append(Reported(f"births/{i}", "member_added", {
            "member": {"nik_status": "pending", "name": birth.name, "sex": birth.sex, "birth_date": born,
                       "relation": "child"},
            "reason": "birth", "effective_date": born}))
    for i, left in enumerate(condition.left):
        found.append(Reported(f"left/{i}", "member_ended", {
            "member_id": str(left.member_id), "kind": left.kind, "effective_date": left.effective_date.isoformat()}))
    return found


def handler(nik_key: bytes) -> Handler:
    """The consumer of `visit.recorded` (`nik_key`: the NIK's keyed hash, for a member who joins)."""

    async def apply_visits_handler(uow: UnitOfWork, events: list[VisitRecorded]) -> None:
        await apply_visits(uow, events, nik_key)

    return apply_visits_handler


async def apply_visits(uow: UnitOfWork, events: Sequence[VisitRecorded], nik_key: bytes) -> None:
    """Apply the household changes of each visit, in partition order (a household's visits as they arrived)."""
    for event in events:
        condition = event.data.observations.condition
        wanted = reported(condition) if condition else []
        if not wanted:
            continue
        done = {r["change"] for r in await uow.conn.fetch(
            "SELECT change FROM visit_applications WHERE visit_id = $1", event.data.visit_id)}
        outcomes = [await _apply(uow, event, change, nik_key) for change in wanted if change.key not in done]
        if outcomes:
            await _keep(uow.conn, event, outcomes)


async def _apply(uow: UnitOfWork, event: VisitRecorded, change: Reported, nik_key: bytes) -> Outcome:
    """One change, in a savepoint: a refusal undoes what it began (its events too) and is answered, not raised."""
    data = event.data
    household_id = data.household_id
    author = Author(data.pendamping_id, "visit", event.correlation_id, event.id,
                    f"observed on the visit of {programme_date(data.captured_at).isoformat()} (visit {data.visit_id})")
    emitted = len(uow.events)
    try:
        async with uow.conn.transaction():
            state = await changes.locked(uow.conn, household_id, None)
            payload, outdated = await _not_outdated(uow.conn, event, change)
            if not payload:
                return Outcome(change, "unchanged", state["version"], reason=outdated)
            if (already := await _reported_already(uow.conn, state, change)) is not None:
                return Outcome(change, "refused", reason=already)
            change = Reported(change.key, change.kind, payload)
            done = await proposals.submit_or_apply_as(
                uow, VISIT_ROLES, change.kind, household_id, None, payload, author,
                lambda: proposals.APPLIERS[change.kind](uow, household_id, payload, author, nik_key),
                request_id=uuid5(data.visit_id, change.key))
    except REFUSALS as refusal:
        del uow.events[emitted:]
        return Outcome(change, "refused", reason=_reason(refusal))
    if isinstance(done, proposals.Proposed):
        return Outcome(change, "proposed", done.version, done.id, outdated)
    version = done.result["version"]
    return Outcome(change, "applied" if version != state["version"] else "unchanged", version, reason=outdated)


async def _not_outdated(conn: asyncpg.Connection, event: VisitRecorded, change: Reported
                        ) -> tuple[dict[str, Any], str | None]:
    """The change without the welfare indicators that a visit captured later reported already (applied,
    proposed or found so): an older observation arriving late does not overwrite a newer one. Answers
    what remains, and the indicators left out (names only) if any."""
    if change.kind != approval.UPDATE:
        return change.payload, None
    rows = await conn.fetch(
        "SELECT fields FROM visit_applications WHERE household_id = $1 AND kind = $2 AND outcome <> 'refused'"
        " AND captured_at > $3", event.data.household_id, approval.UPDATE, event.data.captured_at)
    later = set().union(*(r["fields"] for r in rows))
    welfare = {k: v for k, v in change.payload["welfare"].items() if f"welfare.{k}" not in later}
    dropped = sorted(f"welfare.{k}" for k in change.payload["welfare"].keys() - welfare.keys())
    return ({"welfare": welfare} if welfare else {}), (f"outdated by a later visit: {', '.join(dropped)}"
                                                        if dropped else None)


async def _reported_already(conn: asyncpg.Connection, state: dict[str, Any], change: Reported) -> str | None:
    """Whether another visit reported this birth or departure already (the app recorded it twice): the
    child is a member, or the birth or the end waits as a proposal. None when it is news."""
    if change.kind not in ("member_added", "member_ended"):
        return None
    pending = [json.loads(r["payload"]) for r in await conn.fetch(
        "SELECT payload FROM proposals WHERE household_id = $1 AND kind = $2 AND status = 'pending'",
        state["id"], change.kind)]
    if change.kind == "member_ended":
        waiting = any(p["member_id"] == change.payload["member_id"] for p in pending)
        return "end_proposed_already" if waiting else None
    child = _birth(change.payload["member"])
    if any(_birth(m) == child for m in state["members"].values()):
        return "born_member_already"
    if any(_birth(p["member"]) == child for p in pending):
        return "birth_proposed_already"
    return None


def _birth(member: dict[str, Any]) -> tuple[str, str, str]:
    return " ".join(member["name"].casefold().split()), str(member["birth_date"]), member["relation"]


def _reason(refusal: Exception) -> str:
    """A refusal as rule codes, never a value."""
    if isinstance(refusal, changes.ChangeRejected):
        return "; ".join(f"{v.field}: {v.rule}" for v in refusal.violations)
    return {changes.HouseholdNotFound: "no_such_household", members.MemberNotFound: "no_such_member",
            members.NikClash: "nik_registered", proposals.RequestIdTaken: "request_id_taken"}[type(refusal)]


async def _keep(conn: asyncpg.Connection, event: VisitRecorded, outcomes: Sequence[Outcome]) -> None:
    """Keep what became of each change, log the refusals (ids and rules only), and record the processing of
    the household's data for those the registry took in."""
    data = event.data
    await conn.executemany(
        "INSERT INTO visit_applications (visit_id, change, household_id, kind, outcome, version, proposal_id,"
        " reason, fields, captured_at, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        [(data.visit_id, o.change.key, data.household_id, o.change.kind, o.outcome, o.version, o.proposal_id,
          o.reason, sorted(approval.touched(o.change.kind, o.change.payload)), data.captured_at, event.id)
         for o in outcomes])
    for o in outcomes:
        if o.outcome == "refused":
            log.info("visit %s: %s of household %s refused (%s)", data.visit_id, o.change.key, data.household_id,
                     o.reason, extra={"event_id": str(event.id), "event_type": event.type})
    taken = [o.change for o in outcomes if o.outcome != "refused"]
    fields = [*(["welfare"] if any(c.kind == approval.UPDATE for c in taken) else []),
              *(MEMBER_FIELDS if any(c.kind != approval.UPDATE for c in taken) else [])]
    if fields:
        await processing.record(conn, PROCESSOR, "write", [data.household_id], fields, CHANNEL, PURPOSE,
                                event.correlation_id)
