"""Use cases of the visit schedule: follow registrations and enrolments, close what a visit covers, and
mark households overdue once.

The rules are `domain.schedule`'s; here each batch reads the schedules it touches with one statement
(locking them), applies the rules, and writes them back with one statement per table.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, TypeVar
from uuid import UUID

import asyncpg

from ejsika_contracts import (
    EnrolmentChanged,
    HouseholdRegistered,
    HouseholdRegisteredV2,
    VisitOverdue,
    VisitOverdueData,
    VisitRecordedData,
    VisitScheduled,
    VisitScheduledData,
)
from ejsika_runtime import scopes
from ejsika_runtime.outbox import Outbox, insert_events_sql, wake_relay_sql
from ejsika_runtime.programme_time import SQL_TODAY, programme_date, programme_today
from ejsika_runtime.unit_of_work import UnitOfWork

from .domain import programmes
from .domain.schedule import Change, Due, Schedule, activated, left, visited

SOURCE = "monitoring"
log = logging.getLogger(__name__)
V = TypeVar("V", bound="SeenVisit")


async def on_registered(uow: UnitOfWork, events: list[HouseholdRegistered | HouseholdRegisteredV2]) -> None:
    """Follow each new household (a candidate of its programme): its scope, not yet a schedule. A family
    is scheduled when the registry activates its enrolment (`on_enrolment_changed`)."""
    await uow.conn.execute(
        "INSERT INTO households (household_id, programme, region_code, registered_at, status)"
        " SELECT h, p, r, t, 'candidate' FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])"
        "   AS u(h, p, r, t)"
        " ON CONFLICT (household_id) DO NOTHING",
        [e.data.household_id for e in events],
        [e.data.programme for e in events],
        [e.data.region_code for e in events],
        [e.time for e in events],
    )
    await scopes.follow(uow.conn, SOURCE, events, "scheduling the visits of a family", ("programme", "region_code"))


async def on_enrolment_changed(uow: UnitOfWork, events: Sequence[EnrolmentChanged]) -> None:
    """An active family is scheduled (its first visit within the programme's days, if nothing is due);
    a suspended, exited or candidate one has nothing due and is not overdue."""
    latest: dict[tuple[UUID, str], EnrolmentChanged] = {}
    for event in events:  # partition order: the last step of a household in a programme wins
        key = (event.data.household_id, event.data.programme)
        if key not in latest or latest[key].data.version <= event.data.version:
            latest[key] = event
    steps = list(latest.values())
    conn = uow.conn
    # A household this service never saw registered (its registration lost, or before it followed them).
    await conn.execute(
        "INSERT INTO households (household_id, programme, region_code, registered_at)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])"
        " ON CONFLICT (household_id) DO NOTHING",
        [e.data.household_id for e in steps], [e.data.programme for e in steps],
        [e.data.region_code for e in steps], [e.time for e in steps])
    # The order guard: an older step (a replay after a newer one) changes nothing.
    applied = await conn.fetch(
        "INSERT INTO enrolments (household_id, programme, status, effective_date, version, changed_at)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::int[], $6::timestamptz[])"
        " ON CONFLICT (household_id, programme) DO UPDATE SET status = excluded.status,"
        "   effective_date = excluded.effective_date, version = excluded.version, changed_at = excluded.changed_at"
        " WHERE enrolments.version < excluded.version"
        " RETURNING household_id",
        [e.data.household_id for e in steps], [e.data.programme for e in steps], [e.data.status for e in steps],
        [e.data.effective_date for e in steps], [e.data.version for e in steps], [e.time for e in steps])
    touched = {r["household_id"] for r in applied}
    if not touched:
        return
    cause = {e.data.household_id: e for e in steps if e.data.household_id in touched}
    enrolled = await conn.fetch(
        "SELECT household_id, array_agg(programme ORDER BY programme) FILTER (WHERE status = 'active') AS active,"
        "  (array_agg(status ORDER BY changed_at DESC))[1] AS last"
        " FROM enrolments WHERE household_id = ANY($1::uuid[]) GROUP BY household_id", list(touched))
    schedules = await _locked(conn, touched)
    changes, statuses = [], {}
    for row in enrolled:
        household_id, event = row["household_id"], cause[row["household_id"]]
        schedule = schedules[household_id]
        if row["active"]:
            statuses[household_id] = "active"
            followed = [programmes.programme(p) for p in row["active"]]
            quickest = min(followed, key=lambda p: (p.visit_interval_days, p.first_visit_within_days))
            change = activated(schedule, quickest, programme_date(event.time), event.id)
        else:
            statuses[household_id] = row["last"]
            change = left(schedule)
        changes.append((change, event))
    await _store(conn, [c for c, _ in changes], statuses)
    _announce(uow, [(c, _Cause.of(e)) for c, e in changes])


async def on_visits(uow: UnitOfWork, visits: Sequence[VisitRecordedData], *,
                    correlation_id: UUID | None = None, locked: Mapping[UUID, Schedule] | None = None) -> None:
    """New visits (just stored, in the same transaction): each closes what its household had due up to its
    date, or the next due visit when it falls within that visit's period; the next visit is due an
    interval after the household's latest visit; a household brought up to date is no longer overdue.

    Only the latest visit of each household in the batch matters (an earlier one closes nothing the
    latest does not), so the batch is one row per household. `locked`: the schedules of these households
    read and locked already in this transaction (`LOCKED_SQL`, as the visit intake does with its read).
    """
    latest = latest_of_each(visits)
    if not latest:
        return
    conn = uow.conn
    # First: rows are locked in one order by every writer.
    schedules = locked if locked is not None else await _locked(conn, latest.keys())
    changes = planned_visits(schedules, latest)
    await _store(conn, [c for c, _ in changes], {}, closed_by={c.closed.visit_id: (v.visit_id, v.captured_at)
                                                               for c, v in changes if c.closed},
                 visited_at={h: v.captured_at for h, v in latest.items()})
    announce_visits(uow, changes, correlation_id)


class SeenVisit(Protocol):
    """What the schedule reads of a visit (a `VisitRecordedData`, or one the intake is storing)."""

    visit_id: UUID
    household_id: UUID
    pendamping_id: str
    captured_at: datetime


def latest_of_each(visits: Iterable[V]) -> dict[UUID, V]:
    """The latest visit (captured_at) of each household: the one that moves its schedule."""
    latest: dict[UUID, V] = {}
    for visit in visits:
        held = latest.get(visit.household_id)
        if held is None or visit.captured_at > held.captured_at:
            latest[visit.household_id] = visit
    return latest


def planned_visits(schedules: Mapping[UUID, Schedule], latest: Mapping[UUID, V]) -> list[tuple[Change, V]]:
    """What the latest visit of each household does to its schedule, where it changes something."""
    today = programme_today()
    changes = []
    for household_id, visit in latest.items():
        schedule = schedules.get(household_id)
        if schedule is None:
            continue  # not a household monitoring follows (intake refuses those; nothing to schedule)
        change = visited(schedule, programme_date(visit.captured_at), today, visit.visit_id)
        if change.closed or change.scheduled or change.overdue_ended:
            changes.append((change, visit))
    return changes


def announce_visits(uow: UnitOfWork, changes: Sequence[tuple[Change, SeenVisit]],
                    correlation_id: UUID | None = None) -> None:
    if changes:
        correlation = correlation_id or uuid.uuid4()
        _announce(uow, [(c, _Cause(correlation, None, v.pendamping_id)) for c, v in changes])


def visited_sql(inserted: str, first: int) -> str:
    """`on_visits`' writes as parts of the intake's own statement (after its INSERT, `inserted` naming the
    part that returns the visit_ids stored now), so that a visit and its schedule take one round trip.
    Each household's row applies only when the visit it was planned for (`planned_visits`, its latest one)
    is among those stored now; the intake applies any other (a duplicate as the latest) with `on_visits`.
    Parameters $first..$first+14, in `visited_values`' order."""
    a = [f"${first + i}" for i in range(15)]
    return (
        f" planned AS (SELECT u.* FROM unnest({a[0]}::uuid[], {a[1]}::uuid[], {a[2]}::bool[], {a[3]}::int[],"
        f"  {a[4]}::date[], {a[5]}::date[], {a[6]}::timestamptz[])"
        "  AS u(id, by, changed, interval_days, next_due, overdue_since, visited_at)"
        f"  WHERE u.by IN (SELECT visit_id FROM {inserted})),"
        " heads AS (UPDATE households h"
        "  SET interval_days = CASE WHEN u.changed THEN u.interval_days ELSE h.interval_days END,"
        "   next_due = CASE WHEN u.changed THEN u.next_due ELSE h.next_due END,"
        "   overdue_since = CASE WHEN u.changed THEN u.overdue_since ELSE h.overdue_since END,"
        "   last_visit_at = greatest(h.last_visit_at, u.visited_at)"
        "  FROM planned u WHERE h.household_id = u.id),"
        " closed AS (UPDATE visits v SET done_at = u.at, closed_by = u.by"
        f"  FROM unnest({a[7]}::uuid[], {a[8]}::uuid[], {a[9]}::timestamptz[]) AS u(id, by, at)"
        "  WHERE v.visit_id = u.id AND u.by IN (SELECT p.by FROM planned p) RETURNING 1),"
        # after `closed` (see STORE_SQL): a household has one open due visit at most
        " scheduled AS (INSERT INTO visits (visit_id, household_id, kind, opens_on, due_date)"
        "  SELECT n.id, n.household_id, n.kind, n.opens_on, n.due_date"
        f"  FROM unnest({a[10]}::uuid[], {a[11]}::uuid[], {a[12]}::text[], {a[13]}::date[], {a[14]}::date[])"
        "   AS n(id, household_id, kind, opens_on, due_date), (SELECT count(*) FROM closed) AS c"
        "  WHERE n.household_id IN (SELECT id FROM planned)"
        "  ON CONFLICT (visit_id) DO NOTHING)"
    )


def visited_values(latest: Mapping[UUID, SeenVisit], changes: Sequence[tuple[Change, SeenVisit]]) -> list:
    """The values of `visited_sql`'s parameters: every household's latest visit, and the changes planned."""
    heads = {c.schedule.household_id: c.schedule for c, _ in changes}
    ids = list(latest)
    schedule = [heads.get(h) for h in ids]
    closed = [(c.closed.visit_id, v.visit_id, v.captured_at) for c, v in changes if c.closed]
    new = [(c.schedule.household_id, c.scheduled) for c, _ in changes if c.scheduled]
    return [ids, [latest[h].visit_id for h in ids], [h in heads for h in ids],
            [s.interval_days if s else None for s in schedule],
            [s.due.due_date if s and s.due else None for s in schedule],
            [s.overdue_since if s else None for s in schedule], [latest[h].captured_at for h in ids],
            [d for d, _, _ in closed], [b for _, b, _ in closed], [a for _, _, a in closed],
            [d.visit_id for _, d in new], [h for h, _ in new], [d.kind for _, d in new],
            [d.opens_on for _, d in new], [d.due_date for _, d in new]]


@dataclass(frozen=True)
class _Cause:
    correlation_id: UUID
    causation_id: UUID | None
    pendamping_id: str | None = None

    @classmethod
    def of(cls, event: EnrolmentChanged) -> _Cause:
        return cls(event.correlation_id, event.id)


# The schedules of some households (those monitoring follows), locked for the transaction in one order
# (by household_id) by every writer. $1 the households.
SCHEDULE_COLUMNS = ("h.household_id, h.status, h.interval_days, h.overdue_since, h.last_visit_at,"
                    " v.visit_id, v.kind, v.opens_on, v.due_date")
OPEN_DUE_JOIN = " LEFT JOIN visits v ON v.household_id = h.household_id AND v.done_at IS NULL AND v.cancelled_at IS NULL"
LOCKED_ORDER = " WHERE h.household_id = ANY($1::uuid[]) ORDER BY h.household_id FOR UPDATE OF h"
LOCKED_SQL = f"SELECT {SCHEDULE_COLUMNS} FROM households h{OPEN_DUE_JOIN}{LOCKED_ORDER}"


def schedule_of(row: asyncpg.Record) -> Schedule:
    """A schedule from a row holding `SCHEDULE_COLUMNS`."""
    return Schedule(
        row["household_id"], row["status"] == "active", row["interval_days"],
        Due(row["visit_id"], row["kind"], row["opens_on"], row["due_date"]) if row["visit_id"] else None,
        row["overdue_since"], programme_date(row["last_visit_at"]) if row["last_visit_at"] else None)


async def _locked(conn: asyncpg.Connection, household_ids: Iterable[UUID]) -> dict[UUID, Schedule]:
    """The schedules of these households (those monitoring follows), locked for this transaction."""
    return {r["household_id"]: schedule_of(r) for r in await conn.fetch(LOCKED_SQL, list(household_ids))}


# The schedules written back in one round trip: the households (their schedule when it changed, their
# latest visit when one came) and the due visits cancelled, closed and newly scheduled. No row is the
# target of two of these parts (a change closes or cancels, never both), as one statement requires.
# The parts of a statement run in no set order, but a household has one open visit at most (the unique
# index visits_one_open): the new ones are inserted from rows that count the closed and cancelled ones,
# so those are written first.
STORE_SQL = (
    "WITH heads AS ("
    "  UPDATE households h SET status = coalesce(u.status, h.status),"
    "   interval_days = CASE WHEN u.changed THEN u.interval_days ELSE h.interval_days END,"
    "   next_due = CASE WHEN u.changed THEN u.next_due ELSE h.next_due END,"
    "   overdue_since = CASE WHEN u.changed THEN u.overdue_since ELSE h.overdue_since END,"
    "   last_visit_at = greatest(h.last_visit_at, u.visited_at)"
    "  FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::int[], $5::date[], $6::date[], $7::timestamptz[])"
    "   AS u(id, changed, status, interval_days, next_due, overdue_since, visited_at)"
    "  WHERE h.household_id = u.id),"
    " cancelled AS (UPDATE visits SET cancelled_at = now() WHERE visit_id = ANY($8::uuid[]) RETURNING 1),"
    " closed AS (UPDATE visits v SET done_at = u.at, closed_by = u.by"
    "  FROM unnest($9::uuid[], $10::uuid[], $11::timestamptz[]) AS u(id, by, at) WHERE v.visit_id = u.id"
    "  RETURNING 1),"
    " added AS (INSERT INTO visits (visit_id, household_id, kind, opens_on, due_date)"
    "  SELECT n.* FROM unnest($12::uuid[], $13::uuid[], $14::text[], $15::date[], $16::date[]) AS n,"
    "   (SELECT count(*) FROM closed) AS c, (SELECT count(*) FROM cancelled) AS k"
    "  ON CONFLICT (visit_id) DO NOTHING)"
    " SELECT 1"
)


async def _store(conn: asyncpg.Connection, changes: Sequence[Change], statuses: dict[UUID, str],
                 closed_by: dict[UUID, tuple[UUID, object]] | None = None,
                 visited_at: Mapping[UUID, datetime] | None = None) -> None:
    """Write the changed schedules back, and the latest visit of each household in `visited_at`, in one
    statement (`STORE_SQL`)."""
    visited_at = visited_at or {}
    heads = {c.schedule.household_id: c.schedule for c in changes}
    ids = [*heads, *(h for h in visited_at if h not in heads)]
    if not ids:
        return
    changed = [h in heads for h in ids]
    schedule = [heads.get(h) for h in ids]
    closed = [(due_id, *by) for due_id, by in (closed_by or {}).items()]
    new = [(c.schedule.household_id, c.scheduled) for c in changes if c.scheduled]
    await conn.execute(
        STORE_SQL,
        ids, changed, [statuses.get(h) for h in ids],
        [s.interval_days if s else None for s in schedule],
        [s.due.due_date if s and s.due else None for s in schedule],
        [s.overdue_since if s else None for s in schedule], [visited_at.get(h) for h in ids],
        [c.cancelled.visit_id for c in changes if c.cancelled],
        [c for c, _, _ in closed], [b for _, b, _ in closed], [a for _, _, a in closed],
        [d.visit_id for _, d in new], [h for h, _ in new], [d.kind for _, d in new],
        [d.opens_on for _, d in new], [d.due_date for _, d in new])


def _announce(uow: UnitOfWork, changes: Sequence[tuple[Change, _Cause]]) -> None:
    """visit.scheduled for each visit now due; visit.overdue (false) for each household no longer overdue."""
    for change, cause in changes:
        household_id = change.schedule.household_id
        envelope = dict(source=SOURCE, subject=str(household_id), correlation_id=cause.correlation_id,
                        causation_id=cause.causation_id)
        if change.scheduled:
            due = change.scheduled
            uow.emit(VisitScheduled(**envelope, data=VisitScheduledData(
                household_id=household_id, visit_id=due.visit_id, kind=due.kind, due_date=due.due_date)))
        if change.overdue_ended:
            ended = change.closed or change.cancelled
            uow.emit(VisitOverdue(**envelope, data=VisitOverdueData(
                household_id=household_id, due_date=ended.due_date if ended else programme_today(),
                overdue=False, pendamping_id=cause.pendamping_id)))


# The overdue check: in bounded batches, each its own short transaction, locking only rows no intake
# transaction holds (SKIP LOCKED), so live visits are never stopped; a household marked overdue leaves
# the partial index the check reads, so it is raised once however often the check runs. Each batch is
# one statement: the households marked and their `visit.overdue` written to the outbox by SQL (building
# a million events in Python took most of the check's time). $1 the batch, $2 its correlation.
MARK_OVERDUE = (
    "WITH marked AS ("
    # By ctid (a TID scan of the rows just locked): a join on household_id would scan the table per batch.
    "  UPDATE households h SET overdue_since = h.next_due"
    "  WHERE h.ctid = ANY(ARRAY("
    "    SELECT ctid FROM households WHERE overdue_since IS NULL AND next_due < {today}"
    "    ORDER BY next_due LIMIT $1 FOR UPDATE SKIP LOCKED))"
    "  RETURNING h.household_id, h.next_due,"
    "   (SELECT s.pendamping_id FROM household_scope s WHERE s.household_id = h.household_id) AS pendamping_id),"
    " announced AS (SELECT household_id, $2::uuid AS correlation_id, json_build_object('household_id', household_id,"
    "   'due_date', next_due, 'overdue', true, 'pendamping_id', pendamping_id) AS data FROM marked),"
    f" added AS ({insert_events_sql(VisitOverdue, SOURCE, 'announced')})"
)


async def mark_overdue(pool: asyncpg.Pool, outbox: Outbox, batch: int = 5_000, today: date | None = None,
                       parallel: int = 2) -> int:
    """Mark every household past its due date overdue, once, with one `visit.overdue` each; answer how
    many became overdue. `today` (Asia/Jakarta) defaults to the database's today in Jakarta.

    `parallel` batches go side by side (SKIP LOCKED hands each its own households), so that a check over
    a million households uses more than one core of the database."""

    async def work() -> int:
        marked = 0
        while True:
            found = await mark_overdue_batch(pool, outbox, batch, today)
            marked += found
            if found < batch:
                return marked

    return sum(await asyncio.gather(*(work() for _ in range(max(1, parallel)))))


async def mark_overdue_batch(pool: asyncpg.Pool, outbox: Outbox, batch: int, today: date | None = None) -> int:
    """One batch of the overdue check, in its own transaction: how many households it marked."""
    sql = MARK_OVERDUE.replace("{today}", "$3::date" if today else SQL_TODAY) + " " + wake_relay_sql(outbox.channel)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(sql, batch, uuid.uuid4(), *([today] if today else []))
    return row["added"]


def overdue_loop(pool_of: Callable[[], asyncpg.Pool], outbox: Outbox, every_s: float,
                 batch: int) -> Callable[[], Awaitable[None]]:
    """The overdue check, every `every_s` seconds while the service runs; a failed run is retried next time."""

    async def check_overdue() -> None:
        while True:
            try:
                marked = await mark_overdue(pool_of(), outbox, batch)
                if marked:
                    log.info("households became overdue", extra={"count": marked})
            except Exception:
                log.exception("overdue check failed")
            await asyncio.sleep(every_s)

    return check_overdue
