"""Which households a caller may act on, from each service's own projection of them.

Every service that serves a household's data keeps the few facts that decide who may see it
(programme, village, assigned pendamping) in its `household_scope` table, written from the
registry's events (or by the registry itself), so each service checks access locally.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from ejsika_contracts import HouseholdRegistered, HouseholdRegisteredV2, HouseholdUpdated

from . import processing
from .auth import Principal, Role


@dataclass(frozen=True)
class HouseholdScope:
    household_id: UUID
    programme: str
    region_code: str
    pendamping_id: str | None


def covers(caller: Principal, scope: HouseholdScope) -> bool:
    """Whether any role of `caller` (already narrowed to the route's roles) reaches this household."""
    roles = caller.roles
    return (
        Role.AUDITOR in roles
        or (Role.OPERATOR in roles and caller.programme is not None and scope.programme == caller.programme)
        or (Role.SUPERVISOR in roles and caller.area is not None and scope.region_code.startswith(caller.area))
        or (Role.PENDAMPING in roles and scope.pendamping_id is not None and scope.pendamping_id == caller.subject)
    )


def condition(caller: Principal, alias: str = "s", first: int = 1) -> tuple[str, list]:
    """`covers` as a condition of a query over `household_scope` (as `alias`), for lists filtered in
    the database: its SQL, with the parameters $first..$first+3, and their values.

    Several aliases of one query may share the same parameters (call again with the same `first`).
    """
    if not alias.isidentifier():
        raise ValueError("alias must be an SQL identifier")
    roles = caller.roles
    values = [Role.AUDITOR in roles,
              caller.programme if Role.OPERATOR in roles else None,
              caller.area if Role.SUPERVISOR in roles else None,
              caller.subject if Role.PENDAMPING in roles else None]
    auditor, programme, area, subject = (f"${first + i}" for i in range(4))
    # A NULL value (a claim the caller lacks) makes its term NULL, which OR treats as false.
    sql = (f"({auditor}::boolean OR {alias}.programme = {programme}::text"
           f" OR starts_with({alias}.region_code, {area}::text) OR {alias}.pendamping_id = {subject}::text)")
    return sql, values


async def remember(conn: asyncpg.Connection, scopes: Iterable[HouseholdScope]) -> None:
    """Upsert, in the given order: the last scope of a household wins (a batch in partition order may
    hold a family twice, and one upsert statement may not touch a row twice)."""
    latest = {s.household_id: s for s in scopes}
    rows = [(s.household_id, s.programme, s.region_code, s.pendamping_id) for s in latest.values()]
    if rows:
        await conn.execute(
            "INSERT INTO household_scope (household_id, programme, region_code, pendamping_id)"
            " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])"
            " ON CONFLICT (household_id) DO UPDATE SET programme = excluded.programme,"
            " region_code = excluded.region_code, pendamping_id = excluded.pendamping_id",
            *map(list, zip(*rows)),
        )


async def find(conn: asyncpg.Connection | asyncpg.Pool, household_id: UUID) -> HouseholdScope | None:
    row = await conn.fetchrow(
        "SELECT household_id, programme, region_code, pendamping_id FROM household_scope WHERE household_id = $1",
        household_id,
    )
    return HouseholdScope(**dict(row)) if row else None


async def follow(
    conn: asyncpg.Connection, service: str, events: Sequence[HouseholdRegistered | HouseholdRegisteredV2], purpose: str, fields: Sequence[str]
) -> None:
    """A consumer of registrations: remember each household's scope, and record that `service`
    processed these fields of it, from the event, for `purpose`."""
    await remember(conn, [
        HouseholdScope(e.data.household_id, e.data.programme, e.data.region_code, e.data.pendamping_id) for e in events
    ])
    await processing.record(conn, processing.Processor(service, "service"), "write",
                            [e.data.household_id for e in events], fields, f"event {HouseholdRegistered.event_type}",
                            purpose)


async def follow_updates(conn: asyncpg.Connection, events: Sequence[HouseholdUpdated]) -> None:
    """A consumer of household.updated: a household that moved village or changed pendamping changes who
    may see it here too. Each event names the fields that changed, so the others keep their value."""
    moved = [e for e in events if {"region_code", "pendamping_id"} & set(e.data.changed)]
    if not moved:
        return
    current = {r["household_id"]: HouseholdScope(**dict(r)) for r in await conn.fetch(
        "SELECT household_id, programme, region_code, pendamping_id FROM household_scope"
        " WHERE household_id = ANY($1::uuid[])", [e.data.household_id for e in moved])}
    changed = []
    for event in moved:  # in partition order: a later change of one household builds on the earlier
        scope = current.get(event.data.household_id)
        if scope is None:
            continue  # its registration is not here yet (or never came): nothing to narrow
        data = event.data
        scope = HouseholdScope(
            scope.household_id, scope.programme,
            data.region_code if "region_code" in data.changed else scope.region_code,
            data.pendamping_id if "pendamping_id" in data.changed else scope.pendamping_id)
        current[scope.household_id] = scope
        changed.append(scope)
    await remember(conn, changed)
