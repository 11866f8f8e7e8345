"""Use cases: change a registered household, based on the version its author read.

Every change locks the household's row, checks that the author saw its current version, checks the
rules, stores the new state with the history of old and new values, and announces it through the
outbox, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from ejsika_contracts import Event, HouseholdUpdated, HouseholdUpdatedData
from ejsika_runtime import scopes
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import UnitOfWork

from . import history, households
from .domain.changes import check_household_fields, merged_welfare
from .domain.registration import SOURCE, Violation


@dataclass(frozen=True)
class Author:
    """Who makes a change, from where, and in which chain of events."""

    actor: str | None  # the token's subject, or a service's name
    source: history.Source
    correlation_id: UUID
    causation_id: UUID | None = None  # the event or proposal that caused the change
    reason: str | None = None

    def event(self, cls: type[Event], household_id: UUID, data: Any) -> Event:
        return cls(source=SOURCE, subject=str(household_id), correlation_id=self.correlation_id,
                   causation_id=self.causation_id, data=data)


class HouseholdNotFound(LookupError):
    pass


class StaleVersion(Exception):
    """The author's version is not the current one: nothing was changed."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the current version is {current}")
        self.current = current


class ChangeRejected(ValueError):
    """The change breaks rules; each violation names its field and rule, never a value."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.reason}" for v in violations))
        self.violations = tuple(violations)


async def locked(conn: asyncpg.Connection, household_id: UUID, expected_version: int | None) -> dict[str, Any]:
    """The household's current state, its row locked; StaleVersion unless it is at `expected_version`
    (None: whatever its version, for changes that do not depend on what was read)."""
    state = await households.current_state(conn, household_id, lock=True)
    if state is None:
        raise HouseholdNotFound(household_id)
    if expected_version is not None and state["version"] != expected_version:
        raise StaleVersion(state["version"])
    return state


async def next_version(conn: asyncpg.Connection, household_id: UUID, fields: dict[str, Any] | None = None) -> int:
    """Store the household's new fields (if any) and its next version."""
    fields = fields or {}
    stored = {k: v for k, v in fields.items() if k in households.HOUSEHOLD_FIELDS}
    assignments = [f"{name} = ${i}" for i, name in enumerate(stored, start=2)]
    values = [households.encode_field(name, value) for name, value in stored.items()]
    return await conn.fetchval(
        f"UPDATE households SET {', '.join([*assignments, 'version = version + 1', 'updated_at = now()'])}"
        " WHERE id = $1 RETURNING version",
        household_id, *values,
    )


async def update_household(uow: UnitOfWork, household_id: UUID, expected_version: int | None,
                           given: dict[str, Any], author: Author, today: date | None = None) -> dict[str, Any]:
    """Correct or update a household's fields; answer its new state. A change to nothing changes nothing."""
    state = await locked(uow.conn, household_id, expected_version)
    wanted = dict(given)
    if "welfare" in wanted:
        wanted["welfare"] = merged_welfare(state["welfare"], wanted["welfare"])
    broken = check_household_fields(state["programme"], wanted, today or programme_today())
    if broken:
        raise ChangeRejected(broken)
    changes = history.diff({k: state[k] for k in wanted}, wanted)
    if not changes:
        return state
    version = await next_version(uow.conn, household_id, wanted)
    if "region_code" in changes:  # new neighbours to compare its members with
        await uow.conn.execute("UPDATE members SET kecamatan = $2 WHERE household_id = $1",
                               household_id, wanted["region_code"][:6])
        await households.queue_duplicate_checks(uow.conn, [household_id])
    if "region_code" in changes or "pendamping_id" in changes:
        await scopes.remember(uow.conn, [scopes.HouseholdScope(
            household_id, state["programme"], wanted.get("region_code", state["region_code"]),
            wanted.get("pendamping_id", state["pendamping_id"]))])
    await history.write(uow.conn, [history.Change(household_id, version, "updated", changes, author.source,
                                                  author.actor, author.causation_id, author.reason)])
    changed = sorted(changes)
    uow.emit(author.event(HouseholdUpdated, household_id, HouseholdUpdatedData(
        household_id=household_id, version=version, changed=changed, **{k: wanted[k] for k in changed})))
    state.update(wanted, version=version)
    return state
