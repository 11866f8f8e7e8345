"""Use cases: a family's members as its life changes: a birth or a marriage in, a correction, a death
or a marriage out, a move to another household, a new head, a household split in two.

Each follows `changes.update_household`: lock the household, check the version its author read,
check the rules (`domain.members`), store the new state and a history row of old and new values (a
member is the field `members/<member_id>`, null before they joined or after they left), and announce
it through the outbox, in one transaction. A membership is never deleted: it ends, so where everyone
was stays known, and a person's NIK is active in one household at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from ejsika_contracts import (
    HeadChanged, HeadChangedData, HouseholdMember, HouseholdRegisteredDataV2, HouseholdSplit, HouseholdSplitData,
    MemberAdded, MemberAddedData, MemberEnded, MemberEndedData, MemberFlagged, MemberFlaggedData, MemberMoved,
    MemberMovedData, MemberUpdated, MemberUpdatedData, RelationChange, WelfareIndicators,
)
from ejsika_contracts.events.household import EndKind, JoinReason, Relation
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import UnitOfWork

from . import history, households
from .changes import Author, ChangeRejected, HouseholdNotFound, StaleVersion, locked, next_version
from .domain import members as rules
from .domain.changes import check_household_fields
from .domain.identifiers import nik_digest
from .domain.registration import RegistrationRejected, Violation, register
from .registrations import household_id_for, member_id_for


class MemberNotFound(LookupError):
    """No active member of that id in the household."""


class NikClash(Exception):
    """The NIK is an active member's of another household: that household is named, the person never."""

    def __init__(self, household_id: UUID) -> None:
        self.household_id = household_id
        super().__init__(f"a member is an active member of household {household_id}")


class TargetStale(Exception):
    """The household a member moves to changed since its author read it: nothing was changed."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the target household's current version is {current}")
        self.current = current


class RequestIdTaken(Exception):
    """The split's request_id already made a household that was not split from this one."""


class ConcurrentChange(Exception):
    """Another transaction gave the same NIK to another household at the same moment: retry."""


async def add_member(uow: UnitOfWork, household_id: UUID, expected_version: int | None, declared: HouseholdMember,
                     reason: JoinReason, effective_date: date, author: Author, nik_key: bytes,
                     today: date | None = None) -> dict[str, Any]:
    """A member joins (a birth, a marriage in, a correction of a forgotten one); answer the new state."""
    state = await locked(uow.conn, household_id, expected_version)
    # The declared member may be a subclass that hides its id (api.MemberIn): this is the registry's own.
    member = HouseholdMember.model_validate({**declared.model_dump(), "member_id": uuid4()})
    flags, broken = rules.check_addition(member, state["members"], effective_date, today or programme_today())
    _refuse(broken)
    member = member.model_copy(update={"quality_flags": flags})
    await _check_nik_free(uow.conn, member.nik, household_id)
    await _insert(uow.conn, household_id, member, nik_key)
    version = await next_version(uow.conn, household_id)
    await _write_history(uow.conn, household_id, version, "member_added", author,
                         {history.member_field(member.member_id): (None, member)},
                         {"reason": reason, "effective_date": effective_date})
    uow.emit(author.event(MemberAdded, household_id, MemberAddedData(
        household_id=household_id, version=version, member=member, reason=reason, effective_date=effective_date)))
    _flag(uow, author, household_id, version, member, ())
    return await households.current_state(uow.conn, household_id)


async def update_member(uow: UnitOfWork, household_id: UUID, member_id: UUID, expected_version: int | None,
                        given: dict[str, Any], author: Author, nik_key: bytes, today: date | None = None
                        ) -> dict[str, Any]:
    """Correct a member, or give the NIK that was pending; a change to nothing changes nothing."""
    state = await locked(uow.conn, household_id, expected_version)
    current = _member(state, member_id)
    member, broken = rules.corrected(current, given, state["members"], today or programme_today())
    _refuse(broken)
    new = households.member_state(member)
    changed = sorted(name for name in new if new[name] != current[name])
    if not changed:
        return state
    if "nik" in changed:
        await _check_nik_free(uow.conn, member.nik, household_id)
    try:
        await uow.conn.execute(
            "UPDATE members SET nik = $2, nik_digest = $3, nik_status = $4, name = $5, sex = $6, birth_date = $7,"
            " relation = $8, in_school = $9, pregnant = $10, disability = $11, quality_flags = $12,"
            " health_insurance = $13"
            " WHERE member_id = $1 AND ended_at IS NULL",
            member_id, member.nik, nik_digest(nik_key, member.nik) if member.nik else None, member.nik_status,
            member.name, member.sex, member.birth_date, member.relation, member.in_school, member.pregnant,
            member.disability, list(member.quality_flags), member.health_insurance)
    except asyncpg.UniqueViolationError:
        raise ConcurrentChange() from None
    if {"name", "birth_date", "nik"} & set(changed):
        await households.queue_duplicate_checks(uow.conn, [household_id])
    version = await next_version(uow.conn, household_id)
    await _write_history(uow.conn, household_id, version, "member_updated", author,
                         {history.member_field(member_id): (current, member)}, {"changed": changed})
    uow.emit(author.event(MemberUpdated, household_id, MemberUpdatedData(
        household_id=household_id, version=version, member=member, changed=changed)))
    _flag(uow, author, household_id, version, member, current["quality_flags"])
    return await households.current_state(uow.conn, household_id)


async def end_member(uow: UnitOfWork, household_id: UUID, member_id: UUID, expected_version: int | None,
                     kind: EndKind, effective_date: date, author: Author, today: date | None = None
                     ) -> dict[str, Any]:
    """A membership ends (a death, a marriage out, a move away, a correction); answer the new state."""
    state = await locked(uow.conn, household_id, expected_version)
    current = _member(state, member_id)
    _refuse(rules.check_end(str(member_id), state["members"], effective_date, today or programme_today()))
    await _end(uow.conn, member_id, kind, effective_date)
    version = await next_version(uow.conn, household_id)
    await _write_history(uow.conn, household_id, version, "member_ended", author,
                         {history.member_field(member_id): (current, None)},
                         {"kind": kind, "effective_date": effective_date})
    uow.emit(author.event(MemberEnded, household_id, MemberEndedData(
        household_id=household_id, version=version, member_id=member_id, kind=kind, effective_date=effective_date)))
    return await households.current_state(uow.conn, household_id)


async def move_member(uow: UnitOfWork, household_id: UUID, member_id: UUID, expected_version: int | None,
                      to_household_id: UUID, to_version: int | None, relation: Relation, effective_date: date,
                      author: Author, nik_key: bytes, today: date | None = None
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A member leaves one household for another, in one transaction: the old membership ends (moved
    out), a new one (a new member id, the same person and NIK) starts. Answer both new states."""
    if to_household_id == household_id:
        _refuse([Violation("to_household_id", "to_household_id", "the member is in this household already")])
    # Both rows locked in one order, whichever way a member moves: two opposite moves cannot deadlock.
    states = {}
    for hid in sorted((household_id, to_household_id)):
        states[hid] = await households.current_state(uow.conn, hid, lock=True)
        if states[hid] is None:
            raise HouseholdNotFound(hid)
    source, target = states[household_id], states[to_household_id]
    if expected_version is not None and source["version"] != expected_version:
        raise StaleVersion(source["version"])
    if to_version is not None and target["version"] != to_version:
        raise TargetStale(target["version"])
    current = _member(source, member_id)
    _refuse(rules.check_move(str(member_id), source["members"], target["members"], relation, effective_date,
                             today or programme_today()))
    moved = rules.as_member(current).model_copy(update={"member_id": uuid4(), "relation": relation})
    await _end(uow.conn, member_id, "moved_out", effective_date)  # first: the NIK is active once at a time
    await _insert(uow.conn, to_household_id, moved, nik_key)
    from_version = await next_version(uow.conn, household_id)
    version = await next_version(uow.conn, to_household_id)
    await _write_history(uow.conn, household_id, from_version, "member_moved", author,
                         {history.member_field(member_id): (current, None)},
                         {"to_household_id": to_household_id, "member_id": moved.member_id,
                          "effective_date": effective_date})
    await _write_history(uow.conn, to_household_id, version, "member_moved", author,
                         {history.member_field(moved.member_id): (None, moved)},
                         {"from_household_id": household_id, "previous_member_id": member_id,
                          "effective_date": effective_date})
    uow.emit(author.event(MemberMoved, to_household_id, MemberMovedData(
        household_id=to_household_id, version=version, from_household_id=household_id, from_version=from_version,
        previous_member_id=member_id, member=moved, effective_date=effective_date)))
    return (await households.current_state(uow.conn, household_id),
            await households.current_state(uow.conn, to_household_id))


async def change_head(uow: UnitOfWork, household_id: UUID, expected_version: int | None, new_head: UUID,
                      relations: Sequence[tuple[UUID, Relation]], kk_number: str, author: Author,
                      today: date | None = None) -> dict[str, Any]:
    """Another member heads the household (the head died, left, or the family says so): the others'
    relations to the new head and the new No. KK change with it."""
    state = await locked(uow.conn, household_id, expected_version)
    change, broken = rules.check_head_change(state["members"], str(new_head), [(str(m), r) for m, r in relations])
    broken += check_household_fields(state["programme"], {"kk_number": kk_number}, today or programme_today())
    _refuse(broken)
    for member_id, relation in change.relations.items():
        await uow.conn.execute("UPDATE members SET relation = $2 WHERE member_id = $1 AND ended_at IS NULL",
                               UUID(member_id), relation)
    version = await next_version(uow.conn, household_id, {"kk_number": kk_number})
    members = {history.member_field(m): (state["members"][m], {**state["members"][m], "relation": r})
               for m, r in change.relations.items()}
    await _write_history(uow.conn, household_id, version, "head_changed", author, members,
                         {"head_member_id": new_head, "previous_head_member_id": change.previous_head},
                         household={"kk_number": (state["kk_number"], kk_number)})
    uow.emit(author.event(HeadChanged, household_id, HeadChangedData(
        household_id=household_id, version=version, head_member_id=new_head,
        previous_head_member_id=UUID(change.previous_head), kk_number=kk_number,
        relations=[RelationChange(member_id=UUID(m), relation=r) for m, r in change.relations.items()])))
    return await households.current_state(uow.conn, household_id)


@dataclass(frozen=True)
class Split:
    household_id: UUID
    version: int  # the household split, as of the split
    new_household_id: UUID
    new_version: int
    created: bool  # False: a retry of a split already made, which changed nothing


@dataclass(frozen=True)
class NewHousehold:
    """What a split says of the household it makes; its programme and pendamping are the source's."""

    request_id: UUID
    kk_number: str
    address: str
    region_code: str
    welfare: WelfareIndicators | None = None  # None: the source's indicators, as observed so far


async def split_household(uow: UnitOfWork, household_id: UUID, expected_version: int | None, new: NewHousehold,
                          leaving: Sequence[UUID], new_head: UUID, relations: Sequence[tuple[UUID, Relation]],
                          effective_date: date, author: Author, nik_key: bytes, today: date | None = None) -> Split:
    """Some members leave to form a household of their own (a married child with a new No. KK).

    The new household's id comes from the request id: a retry answers the split it already made.
    """
    today = today or programme_today()
    state = await locked(uow.conn, household_id, None)
    new_id = household_id_for(new.request_id)
    done = await _split_made(uow.conn, household_id, new_id)
    if done is not None:
        return done
    if expected_version is not None and state["version"] != expected_version:
        raise StaleVersion(state["version"])
    leaving_ids = [str(m) for m in leaving]
    placed, broken = rules.check_split(state["members"], leaving_ids, str(new_head),
                                       [(str(m), r) for m, r in relations])
    if effective_date > today:
        broken.append(Violation("effective_date", "effective_date", "effective_date cannot lie in the future"))
    _refuse(broken)
    data = HouseholdRegisteredDataV2(
        household_id=new_id, programme=state["programme"], region_code=new.region_code, kk_number=new.kk_number,
        address=new.address, welfare=new.welfare or WelfareIndicators.model_validate(state["welfare"]),
        pendamping_id=state["pendamping_id"], split_from=household_id,
        members=[rules.as_member(state["members"][m]).model_copy(
            update={"member_id": member_id_for(new_id, position), "relation": relation})
            for position, (_, m, relation) in enumerate(placed, start=1)],
    )
    try:
        registered = register(data, author.correlation_id, today).model_copy(
            update={"causation_id": author.causation_id})
    except RegistrationRejected as rejected:  # members[i] of the new household is member_ids[j] of the request
        index = {f"members[{position}]": f"member_ids[{i}]" for position, (i, _, _) in enumerate(placed)}
        raise ChangeRejected([Violation(_renamed(v.field, index), v.rule, v.reason)
                              for v in rejected.violations]) from None
    for member_id in leaving:  # ended first: each NIK is active once at a time
        await _end(uow.conn, member_id, "moved_out", effective_date)
    try:
        inserted = await households.insert_new(uow.conn, [registered], nik_key, author.source, author.actor)
    except asyncpg.UniqueViolationError:
        raise ConcurrentChange() from None
    if new_id not in inserted:  # registered meanwhile under the same request id
        raise RequestIdTaken()
    version = await next_version(uow.conn, household_id)
    await _write_history(uow.conn, household_id, version, "split", author,
                         {history.member_field(m): (state["members"][m], None) for m in leaving_ids},
                         {"new_household_id": new_id, "member_ids": leaving_ids, "request_id": new.request_id,
                          "effective_date": effective_date})
    uow.emit(author.event(HouseholdSplit, household_id, HouseholdSplitData(
        household_id=household_id, version=version, new_household_id=new_id, member_ids=list(leaving))))
    uow.emit(registered)
    return Split(household_id, version, new_id, 1, created=True)


async def _split_made(conn: asyncpg.Connection, household_id: UUID, new_id: UUID) -> Split | None:
    """The split this request already made, if any; RequestIdTaken if its id made another household."""
    made = await conn.fetchrow(
        "SELECT r.detail->>'split_from' AS split_from FROM households h LEFT JOIN household_history r"
        " ON r.household_id = h.id AND r.change = 'registered' WHERE h.id = $1", new_id)
    if made is None:
        return None
    if made["split_from"] != str(household_id):
        raise RequestIdTaken()
    version = await conn.fetchval(
        "SELECT version FROM household_history WHERE household_id = $1 AND change = 'split'"
        " AND detail->>'new_household_id' = $2", household_id, str(new_id))
    return Split(household_id, version, new_id, 1, created=False)


def _renamed(field: str, index: dict[str, str]) -> str:
    head, dot, rest = field.partition(".")
    return index[head] + dot + rest if head in index else field


def _refuse(broken: Sequence[Violation]) -> None:
    if broken:
        raise ChangeRejected(broken)


def _member(state: dict[str, Any], member_id: UUID) -> dict[str, Any]:
    member = state["members"].get(str(member_id))
    if member is None:
        raise MemberNotFound(member_id)
    return member


async def _check_nik_free(conn: asyncpg.Connection, nik: str | None, household_id: UUID) -> None:
    if nik is None:
        return
    where = (await households.active_households(conn, [nik])).get(nik)
    if where is not None and where != household_id:
        raise NikClash(where)


async def _insert(conn: asyncpg.Connection, household_id: UUID, member: HouseholdMember, nik_key: bytes) -> None:
    """A new membership, after every other membership the household ever had."""
    position, kecamatan = await conn.fetchrow(
        "SELECT coalesce(max(m.position), 0) + 1, left(h.region_code, 6) FROM households h"
        " LEFT JOIN members m ON m.household_id = h.id WHERE h.id = $1 GROUP BY h.region_code", household_id)
    try:
        await households.add_members(conn, [(household_id, position, member, kecamatan)], nik_key)
    except asyncpg.UniqueViolationError:
        raise ConcurrentChange() from None
    await households.queue_duplicate_checks(conn, [household_id])


async def _end(conn: asyncpg.Connection, member_id: UUID | str, kind: EndKind, effective_date: date) -> None:
    await conn.execute("UPDATE members SET ended_at = now(), end_kind = $2, ended_on = $3"
                       " WHERE member_id = $1 AND ended_at IS NULL", UUID(str(member_id)), kind, effective_date)


async def _write_history(conn: asyncpg.Connection, household_id: UUID, version: int, kind: str, author: Author,
                         members: dict[str, tuple[Any, Any]], detail: dict[str, Any],
                         household: dict[str, tuple[Any, Any]] | None = None) -> None:
    """One history row: each member as a whole before and after (None: not a member then)."""
    changes = {name: {"old": _stored(old), "new": _stored(new)} for name, (old, new) in members.items()}
    changes.update({name: {"old": history.jsonable(old), "new": history.jsonable(new)}
                    for name, (old, new) in (household or {}).items() if old != new})
    await history.write(conn, [history.Change(household_id, version, kind, changes, author.source, author.actor,
                                              author.causation_id, author.reason, detail)])


def _stored(member: HouseholdMember | dict | None) -> dict[str, Any] | None:
    return None if member is None else households.member_state(member)


def _flag(uow: UnitOfWork, author: Author, household_id: UUID, version: int, member: HouseholdMember,
          before: Sequence[str]) -> None:
    """Tell the operators when a member's data gains something to review."""
    if set(member.quality_flags) - set(before):
        uow.emit(author.event(MemberFlagged, household_id, MemberFlaggedData(
            household_id=household_id, version=version, member_id=member.member_id,
            quality_flags=list(member.quality_flags))))
