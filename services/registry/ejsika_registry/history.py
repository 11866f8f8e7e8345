"""The history of every household: each change with its old and new values, and reads as of a past moment.

A change names the fields it touched, each with `{"old": ..., "new": ...}` as JSON. Household fields
keep their names (`address`, `welfare`, `status`, `enrolments/jscm`, ...); a member is the field
`members/<member_id>`, whose value is the whole member, null before they joined or after they left.
So one rule undoes any change, and a household as of a past moment is today's state with every
later change undone, newest first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

# Where a change came from, as the history shows it.
Source = Literal["app", "import", "visit", "agency", "eligibility", "operator", "proposal", "registry"]
MEMBER_PREFIX = "members/"


@dataclass(frozen=True)
class Change:
    household_id: UUID
    version: int
    kind: str  # registered, updated, member_added, member_ended, member_moved, head_changed, split, ...
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {"old": .., "new": ..}
    source: Source = "app"
    actor: str | None = None  # the subject of the token, or the service
    cause_id: UUID | None = None  # the event, proposal or request that caused it
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields whose JSON value differs, with both values."""
    changed = {}
    for name in old.keys() | new.keys():
        before, after = jsonable(old.get(name)), jsonable(new.get(name))
        if before != after:
            changed[name] = {"old": before, "new": after}
    return changed


def jsonable(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def member_field(member_id: UUID | str) -> str:
    return f"{MEMBER_PREFIX}{member_id}"


async def write(conn: asyncpg.Connection, changes: Sequence[Change]) -> None:
    if changes:
        await conn.copy_records_to_table(
            "household_history",
            records=[(c.household_id, c.version, c.kind, json.dumps(jsonable(c.detail)), c.cause_id,
                      json.dumps(c.changes), c.source, c.actor, c.reason) for c in changes],
            columns=["household_id", "version", "change", "detail", "cause_id", "changes", "source", "actor", "reason"],
        )


def undo(state: dict[str, Any], changes: dict[str, dict[str, Any]]) -> None:
    """Put back the old value of every field a change touched (state as `current_state` shapes it)."""
    for name, values in changes.items():
        if name.startswith(MEMBER_PREFIX):
            member_id = name[len(MEMBER_PREFIX):]
            if values["old"] is None:
                state["members"].pop(member_id, None)
            else:
                state["members"][member_id] = values["old"]
        elif values["old"] is None and name.startswith("enrolments/"):
            state["enrolments"].pop(name.split("/", 1)[1], None)
        elif name.startswith("enrolments/"):
            state["enrolments"][name.split("/", 1)[1]] = values["old"]
        else:
            state[name] = values["old"]


async def as_of(conn: asyncpg.Connection, current: dict[str, Any], at: datetime) -> dict[str, Any] | None:
    """The household as it was at `at`: `current` (from `current_state`) with every later change undone.

    None when the household did not exist yet.
    """
    if current["registered_at"] > at:
        return None
    rows = await conn.fetch(
        "SELECT version, changes, changed_at FROM household_history"
        " WHERE household_id = $1 AND changed_at > $2 ORDER BY version DESC",
        current["id"], at,
    )
    state = {**current, "members": dict(current["members"]), "enrolments": dict(current["enrolments"])}
    for row in rows:
        undo(state, json.loads(row["changes"]))
    if rows:
        state["version"] = rows[-1]["version"] - 1
        state["updated_at"] = await conn.fetchval(
            "SELECT changed_at FROM household_history WHERE household_id = $1 AND version = $2",
            current["id"], state["version"]) or current["registered_at"]
    return state


async def page(conn: asyncpg.Connection, household_id: UUID, after_version: int, limit: int
               ) -> tuple[list[dict[str, Any]], int | None]:
    """The changes after `after_version`, oldest first, and the version the next page starts after (None at the end)."""
    rows = await conn.fetch(
        "SELECT version, change, changes, detail, source, actor, reason, cause_id, changed_at FROM household_history"
        " WHERE household_id = $1 AND version > $2 ORDER BY version LIMIT $3",
        household_id, after_version, limit + 1,
    )
    items = [{**dict(r), "changes": json.loads(r["changes"]), "detail": json.loads(r["detail"])} for r in rows[:limit]]
    return items, items[-1]["version"] if len(rows) > limit else None
