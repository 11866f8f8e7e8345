"""Use cases: a household's enrolment in each programme, from registration to exit and re-entry.

A registered household is a candidate of its programme (`enter_registered`, in the registration's own
batch). An operator or a supervisor then moves it (`change`): each step locks the household, checks the
version its author read and the rules of `domain.enrolment`, stores the enrolment with the household's
next version, writes the history (`enrolments/<programme>`, old and new) and announces
`enrolment.changed`, in one transaction.

Eligibility decisions never move an enrolment (`recommend_exits`): an eligible candidate waits for an
operator to admit it (the programme's quota is the eligibility service's to decide, and a future
`quota.admitted` event may admit it), and a family no longer eligible gets a recommended exit, which an
operator confirms or a later eligible decision withdraws.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from ejsika_contracts import EligibilityAssessed, EnrolmentChanged, EnrolmentChangedData, HouseholdRegisteredV2
from ejsika_runtime.programme_time import programme_date, programme_today
from ejsika_runtime.unit_of_work import UnitOfWork

from . import changes, history
from .domain.enrolment import (
    HELD, Enrolment, TransitionRefused, Wanted, proposed_exit, transition,
)
from .domain.regions import RegionError, programme_for

# The fields of an enrolment, as the record of processing names them.
ENROLMENT_FIELDS = ("enrolments.status", "enrolments.exit_kind", "enrolments.reason", "enrolments.effective_date",
                    "enrolments.recommended_exit")
RECOMMENDATION_FIELDS = ("enrolments.status", "enrolments.recommended_exit")


def registration_day(event: HouseholdRegisteredV2) -> date:
    """The day (Asia/Jakarta) a registered household became a candidate: the day of its registration."""
    return programme_date(event.time)


async def enter_registered(conn: asyncpg.Connection, registered: Sequence[HouseholdRegisteredV2]) -> None:
    """Make each freshly registered household a candidate of its programme: one statement for the batch.

    No version and no history row of its own: the registration (version 1) is where it starts.
    """
    await enter(conn, [(e.data.household_id, e.data.programme, registration_day(e)) for e in registered])


async def enter(conn: asyncpg.Connection, candidates: Sequence[tuple[UUID | str, str, date]]) -> None:
    """(household, programme, day): each a candidate of the programme from that day, unless enrolled already."""
    if candidates:
        households, programmes, days = zip(*candidates)
        await conn.execute(
            "INSERT INTO enrolments (household_id, programme, status, effective_date)"
            " SELECT h, p, 'candidate', d FROM unnest($1::uuid[], $2::text[], $3::date[]) AS u(h, p, d)"
            " ON CONFLICT (household_id, programme) DO NOTHING",
            list(households), list(programmes), list(days),
        )


async def change(uow: UnitOfWork, household_id: UUID, programme: str, expected_version: int | None, wanted: Wanted,
                 author: changes.Author, today: date | None = None) -> tuple[dict[str, Any], int]:
    """Move the household's enrolment in `programme`; answer it (as `of_household` does) and the household's
    new version.

    Raises HouseholdNotFound, StaleVersion, or TransitionRefused (nothing stored).
    """
    state = await changes.locked(uow.conn, household_id, expected_version)
    try:
        programme_for(programme, state["region_code"])
    except RegionError as error:
        raise TransitionRefused(error.field, error.rule, str(error)) from None
    old = state["enrolments"].get(programme)
    current = Enrolment.of(programme, old) if old else None
    others = [Enrolment.of(p, e) for p, e in state["enrolments"].items() if p != programme]
    new = transition(current, programme, wanted, others, today or programme_today())
    stored = await uow.conn.fetchrow(
        "INSERT INTO enrolments (household_id, programme, status, exit_kind, reason, effective_date)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (household_id, programme) DO UPDATE SET status = excluded.status,"
        " exit_kind = excluded.exit_kind, reason = excluded.reason, effective_date = excluded.effective_date,"
        " updated_at = now(),"
        # A pending recommendation stays while the family holds its place ($7) and goes with the exit: a
        # sub-select without a row sets the columns to null.
        " (recommended_exit_kind, recommended_reason, recommended_at, recommended_by_event) ="
        " (SELECT enrolments.recommended_exit_kind, enrolments.recommended_reason, enrolments.recommended_at,"
        "   enrolments.recommended_by_event WHERE $7)"
        " RETURNING recommended_exit_kind, recommended_reason, recommended_at",
        household_id, programme, new.status, new.exit_kind, new.reason, new.effective_date, new.status in HELD,
    )
    version = await changes.next_version(uow.conn, household_id)
    await history.write(uow.conn, [history.Change(
        household_id, version, "enrolment_changed", {f"enrolments/{programme}": {"old": old, "new": new.state()}},
        author.source, author.actor, author.causation_id, wanted.reason or author.reason,
        detail={"programme": programme, "status": new.status})])
    uow.emit(author.event(EnrolmentChanged, household_id, EnrolmentChangedData(
        household_id=household_id, version=version, programme=programme, region_code=state["region_code"],
        status=new.status, previous_status=current.status if current else None, exit_kind=new.exit_kind,
        reason=new.reason, effective_date=new.effective_date)))
    return {"programme": programme, **new.state(), "recommended_exit": _recommendation(stored)}, version


async def recommend_exits(conn: asyncpg.Connection, events: Sequence[EligibilityAssessed]) -> int:
    """Record (or withdraw) the exit each eligibility decision recommends for an active or suspended family:
    the one it proposes (`domain.enrolment.proposed_exit`), with the decision's reason.

    One statement for the batch; the last decision of a household in a programme wins (a batch is in
    partition order). A recommendation of the same kind keeps its first date and event. Answers how many
    enrolments changed.
    """
    latest: dict[tuple[UUID, str], EligibilityAssessed] = {}
    for event in events:
        latest[event.data.household_id, event.data.programme] = event
    rows = []
    for (household_id, programme), event in latest.items():
        kind, reason = proposed_exit(event.data)
        rows.append((household_id, programme, kind, reason, event.id))
    if not rows:
        return 0
    done = await conn.fetch(
        "UPDATE enrolments e SET recommended_exit_kind = u.kind, recommended_reason = u.reason,"
        " recommended_at = CASE WHEN u.kind IS NULL THEN NULL ELSE now() END,"
        " recommended_by_event = CASE WHEN u.kind IS NULL THEN NULL ELSE u.event_id END"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[])"
        "   AS u(household_id, programme, kind, reason, event_id)"
        " WHERE e.household_id = u.household_id AND e.programme = u.programme"
        " AND e.status IN ('active', 'suspended') AND e.recommended_exit_kind IS DISTINCT FROM u.kind"
        " RETURNING e.household_id",
        *map(list, zip(*rows)),
    )
    return len(done)


async def of_household(conn: asyncpg.Connection, household_id: UUID) -> list[dict[str, Any]]:
    """The household's enrolments, each with its pending recommended exit (or None), by programme."""
    rows = await conn.fetch(
        "SELECT programme, status, exit_kind, reason, effective_date, recommended_exit_kind, recommended_reason,"
        " recommended_at FROM enrolments WHERE household_id = $1 ORDER BY programme",
        household_id,
    )
    return [{**{k: r[k] for k in ("programme", "status", "exit_kind", "reason", "effective_date")},
             "recommended_exit": _recommendation(r)} for r in rows]


def _recommendation(row: asyncpg.Record) -> dict[str, Any] | None:
    if row["recommended_exit_kind"] is None:
        return None
    return {"exit_kind": row["recommended_exit_kind"], "reason": row["recommended_reason"],
            "recommended_at": row["recommended_at"]}


async def recommended(conn: asyncpg.Connection, programme: str | None, region_prefix: str | None,
                      after: tuple[datetime, UUID, str] | None, limit: int
                      ) -> tuple[list[dict[str, Any]], tuple[datetime, UUID, str] | None]:
    """The pending recommended exits, oldest first, and the position the next page starts after (None at the end).

    No names or NIKs: the household, its programme, village and version (for If-Match), and the recommendation.
    """
    at, household, code = after or (None, None, None)
    rows = await conn.fetch(
        "SELECT e.household_id, e.programme, h.region_code, e.status, h.version, e.recommended_exit_kind,"
        " e.recommended_reason, e.recommended_at"
        " FROM enrolments e JOIN households h ON h.id = e.household_id"
        " WHERE e.recommended_exit_kind IS NOT NULL AND ($1::text IS NULL OR e.programme = $1)"
        " AND ($2::text IS NULL OR h.region_code LIKE $2 || '%')"
        " AND ($3::timestamptz IS NULL OR (e.recommended_at, e.household_id, e.programme) > ($3, $4::uuid, $5::text))"
        " ORDER BY e.recommended_at, e.household_id, e.programme LIMIT $6",
        programme, region_prefix, at, household, code, limit + 1,
    )
    items = [{"household_id": r["household_id"], "programme": r["programme"], "region_code": r["region_code"],
              "status": r["status"], "version": r["version"], "recommended_exit": _recommendation(r)}
             for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return items, (last["recommended_at"], last["household_id"], last["programme"]) if last else None
