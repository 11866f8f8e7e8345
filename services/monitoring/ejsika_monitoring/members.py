"""Projection: the members of each household, as the verification of commitments needs them.

Only what tells who has a commitment (birth date, sex, pregnancy) and whether they still belong to
the household: no name, no NIK. household.registered v1 names no member ids, so such a household
has no members here (and is `not_verifiable`) until a v2 event or member.added names them.

Events of one household arrive in order (one partition), but a member who moves or splits off
joins another household, whose events may come before those of the one they left: a member row
follows the household it joined last; the household it left may end it there, not where it went.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

from ejsika_contracts import (
    HouseholdMember,
    HouseholdRegistered,
    HouseholdRegisteredV2,
    HouseholdSplit,
    MemberAdded,
    MemberEnded,
    MemberMoved,
    MemberUpdated,
)
from ejsika_runtime.unit_of_work import UnitOfWork

Row = tuple[UUID, UUID, HouseholdMember, int]  # member_id, household_id, member, household version

# Joining (registration, added, moved) takes a row to another household whatever the versions (they
# count per household); within one household a change applies only over an older or equal version.
_JOIN = (
    "INSERT INTO members (member_id, household_id, birth_date, sex, pregnant, active, household_version)"
    " SELECT m, h, b, s, p, true, v FROM unnest($1::uuid[], $2::uuid[], $3::date[], $4::text[], $5::bool[],"
    " $6::int[]) AS t(m, h, b, s, p, v)"
    " ON CONFLICT (member_id) DO UPDATE SET household_id = excluded.household_id, birth_date = excluded.birth_date,"
    " sex = excluded.sex, pregnant = excluded.pregnant, active = true, household_version = excluded.household_version"
    " WHERE members.household_id <> excluded.household_id OR members.household_version <= excluded.household_version"
)
# An update comes from the household the member is in: one they left changes them no more.
_UPDATE = _JOIN.replace("members.household_id <> excluded.household_id OR", "members.household_id = excluded.household_id AND")
_END = (
    "UPDATE members SET active = false, household_version = t.v"
    " FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS t(m, h, v)"
    " WHERE members.member_id = t.m AND members.household_id = t.h AND members.household_version <= t.v"
)


def _latest(rows: Sequence[tuple]) -> dict[UUID, tuple]:
    """One row per member (a statement may not touch a row twice): the last in order, unless an earlier
    one of the same household is of a newer version (an older event replayed within the batch)."""
    latest: dict[UUID, tuple] = {}
    for row in rows:
        member_id, household_id, version = row[0], row[1], row[-1]
        kept = latest.get(member_id)
        if kept is None or kept[1] != household_id or kept[-1] <= version:
            latest[member_id] = row
    return latest


async def _upsert(uow: UnitOfWork, rows: Sequence[Row], sql: str = _JOIN) -> None:
    latest = _latest(rows)
    if latest:
        rows = list(latest.values())
        await uow.conn.execute(sql, [r[0] for r in rows], [r[1] for r in rows],
                               [r[2].birth_date for r in rows], [r[2].sex for r in rows],
                               [r[2].pregnant for r in rows], [r[3] for r in rows])


async def _end(uow: UnitOfWork, rows: Sequence[tuple[UUID, UUID, int]]) -> None:
    latest = _latest(rows)
    if latest:
        await uow.conn.execute(_END, *map(list, zip(*latest.values())))


async def on_registered(uow: UnitOfWork, events: Sequence[HouseholdRegistered | HouseholdRegisteredV2]) -> None:
    await _upsert(uow, [(m.member_id, e.data.household_id, m, e.data.version)
                        for e in events if isinstance(e, HouseholdRegisteredV2) for m in e.data.members])


async def on_added(uow: UnitOfWork, events: Sequence[MemberAdded]) -> None:
    await _upsert(uow, [(e.data.member.member_id, e.data.household_id, e.data.member, e.data.version) for e in events])


async def on_updated(uow: UnitOfWork, events: Sequence[MemberUpdated]) -> None:
    await _upsert(uow, [(e.data.member.member_id, e.data.household_id, e.data.member, e.data.version) for e in events],
                  _UPDATE)


async def on_ended(uow: UnitOfWork, events: Sequence[MemberEnded]) -> None:
    await _end(uow, [(e.data.member_id, e.data.household_id, e.data.version) for e in events])


async def on_moved(uow: UnitOfWork, events: Sequence[MemberMoved]) -> None:
    # The member leaves under their previous id and joins under a new one.
    await _end(uow, [(e.data.previous_member_id, e.data.from_household_id, e.data.from_version) for e in events])
    await _upsert(uow, [(e.data.member.member_id, e.data.household_id, e.data.member, e.data.version) for e in events])


async def on_split(uow: UnitOfWork, events: Sequence[HouseholdSplit]) -> None:
    """The members leave the household split; the new household's own registration (v2) adds them.
    If that registration came first, the rows already follow the new household and stay active."""
    await _end(uow, [(m, e.data.household_id, e.data.version) for e in events for m in e.data.member_ids])


Handler = Callable[[UnitOfWork, list], Awaitable[None]]


def with_members(handler: Handler) -> Handler:
    """`handler` of registrations, followed by this projection of the registered members."""

    async def both(uow: UnitOfWork, events: list) -> None:
        await handler(uow, events)
        await on_registered(uow, events)

    both.__name__ = f"{getattr(handler, '__name__', 'handler')}_and_members"
    return both


HANDLERS: dict[type, Handler] = {
    MemberAdded: on_added,
    MemberUpdated: on_updated,
    MemberEnded: on_ended,
    MemberMoved: on_moved,
    HouseholdSplit: on_split,
}
