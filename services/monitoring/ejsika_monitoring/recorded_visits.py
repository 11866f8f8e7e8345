"""Use case: take the kunjungan (visits) a caseworker app uploads, one or a whole offline sync.

In the caller's transaction: the households' facts are read once for the batch, each visit is judged
by the rules of `domain.visits`, the new ones go in with one statement that also writes them in the
caller's record of processing (a visit_id already stored is a duplicate, also within the batch), each new
one is announced as `visit.recorded`, keyed by its household, and closes what was due. The notes are
stored and never published.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from ejsika_contracts import Location, Observations, VisitRecorded, VisitRecordedData
from ejsika_runtime.access import Caller
from ejsika_runtime.scopes import HouseholdScope
from ejsika_runtime.unit_of_work import UnitOfWork

from . import schedules
from .domain.schedule import Change, Schedule
from .domain.visits import KnownHousehold, Violation, VisitPolicy, first_of_each, refusals

SOURCE = "monitoring"
# What a visit writes of a family, for the record of processing.
VISIT_RECORD_FIELDS = ("visit_records.captured_at", "visit_records.location", "visit_records.observations",
                       "visit_records.notes")
TAKEN = Violation("visit_id", "visit_id_taken", "this visit_id was used for a visit of another household")

Result = Literal["recorded", "duplicate", "rejected"]


@dataclass(frozen=True)
class Visit:
    visit_id: UUID
    household_id: UUID
    pendamping_id: str
    captured_at: datetime
    location: Location | None
    observations: Observations
    notes: str | None


@dataclass(frozen=True)
class Outcome:
    visit_id: UUID
    household_id: UUID
    result: Result
    errors: tuple[Violation, ...] = ()


# The households a batch names, each with its scope and its schedule, locked for the transaction (the
# schedule's lock order, `schedules.LOCKED_SQL`): one read serves the rules of intake and the schedule.
KNOWN_SQL = (f"SELECT {schedules.SCHEDULE_COLUMNS}, h.registered_at, s.programme, s.region_code, s.pendamping_id"
             f" FROM households h LEFT JOIN household_scope s ON s.household_id = h.household_id"
             f"{schedules.OPEN_DUE_JOIN}")
# One household (a visit posted alone) by equality: PostgreSQL plans `= ANY($1)` afresh at each execution (its
# generic plan, costed for an array of ten, never beats the custom one), and planning this join cost about as
# much as running it; by equality it keeps a generic plan after five runs.
KNOWN_ONE_SQL = f"{KNOWN_SQL} WHERE h.household_id = $1 FOR UPDATE OF h"
KNOWN_SQL = f"{KNOWN_SQL}{schedules.LOCKED_ORDER}"


async def known_households(conn: asyncpg.Connection, household_ids: Sequence[UUID],
                           covers: Callable[[HouseholdScope], bool]
                           ) -> tuple[dict[UUID, KnownHousehold], dict[UUID, Schedule]]:
    """The households monitoring follows among these, with whether the caller reaches each, and their
    schedules, locked for the caller's transaction."""
    ids = list(set(household_ids))
    rows = await (conn.fetch(KNOWN_ONE_SQL, ids[0]) if len(ids) == 1 else conn.fetch(KNOWN_SQL, ids))
    known = {r["household_id"]: KnownHousehold(
        r["household_id"], r["registered_at"],
        r["programme"] is not None and covers(HouseholdScope(r["household_id"], r["programme"], r["region_code"],
                                                             r["pendamping_id"])))
        for r in rows}
    return known, {r["household_id"]: schedules.schedule_of(r) for r in rows}


async def take(uow: UnitOfWork, visits: Sequence[Visit], caller: Caller, received_at: datetime,
               policy: VisitPolicy) -> list[Outcome]:
    """The intake of `POST /visits` and `/visits/batch`, in the caller's transaction: each visit's outcome
    in input order; the new ones stored, announced, written in the record of processing, and closing what
    their households had due. The benchmarks' live-intake probes take visits through this same path.

    Three statements: the households read (and their schedules locked), the visits stored with their record
    of processing and their schedules' changes (planned from the locked schedules as if every visit were
    new, applied for those stored now), and the events at commit. A household whose latest visit of the
    upload turns out to be stored already (a duplicate) and that has another new visit in it is scheduled
    by one more statement (`schedules.on_visits`)."""
    households, locked = await known_households(uow.conn, [v.household_id for v in visits], caller.covers)
    outcomes: list[Outcome | None] = [None] * len(visits)
    admitted: list[int] = []
    for i, visit in enumerate(visits):
        broken = refusals(visit.captured_at, received_at, households.get(visit.household_id), policy)
        if broken:
            outcomes[i] = Outcome(visit.visit_id, visit.household_id, "rejected", broken)
        else:
            admitted.append(i)

    firsts = first_of_each([visits[i].visit_id for i in admitted])
    unique = [visits[i] for i, first in zip(admitted, firsts) if first]
    latest = schedules.latest_of_each(unique)
    planned = schedules.planned_visits(locked, latest)
    new = await _insert(uow.conn, unique, received_at, caller, latest, planned)
    # A visit_id not inserted now is stored already: the same visit again, unless it was another household's.
    stored = {v.visit_id: v.household_id for v in unique if v.visit_id not in new}
    if stored:
        stored = {r["visit_id"]: r["household_id"] for r in await uow.conn.fetch(
            "SELECT visit_id, household_id FROM visit_records WHERE visit_id = ANY($1::uuid[])", list(stored))}
    in_batch = {v.visit_id: v.household_id for v in unique}
    for i, first in zip(admitted, firsts):
        visit = visits[i]
        if first and visit.visit_id in new:
            outcomes[i] = Outcome(visit.visit_id, visit.household_id, "recorded")
            continue
        owner = in_batch[visit.visit_id] if visit.visit_id in new else stored.get(visit.visit_id)
        outcomes[i] = (Outcome(visit.visit_id, visit.household_id, "duplicate") if owner == visit.household_id
                       else Outcome(visit.visit_id, visit.household_id, "rejected", (TAKEN,)))

    recorded = sorted((_data(v, received_at) for v in unique if v.visit_id in new), key=lambda d: d.captured_at)
    # Validated, not model_construct: the data is taken as built (an instance is not validated again), and
    # model_construct inspects each default factory's signature on every call (pydantic 2.14), which made it
    # several times slower than validating the envelope.
    uow.emit_all([VisitRecorded(source=SOURCE, subject=str(d.household_id), correlation_id=d.visit_id, data=d)
                  for d in recorded])
    # What was due closes, an overdue household is no longer overdue: applied by the insert for the
    # households whose latest visit is new, by one more statement for the others with a new visit.
    schedules.announce_visits(uow, [(c, v) for c, v in planned if v.visit_id in new])
    others = [d for d in recorded if latest[d.household_id].visit_id not in new]
    if others:
        await schedules.on_visits(uow, others, locked=locked)
    return outcomes  # type: ignore[return-value]  # every position was answered


async def _insert(conn: asyncpg.Connection, visits: Sequence[Visit], received_at: datetime, caller: Caller,
                  latest: Mapping[UUID, Visit], planned: Sequence[tuple[Change, Visit]]) -> set[UUID]:
    """Store the visits not stored yet, write the households of those in the caller's record of processing,
    and apply the schedule changes `planned` for those stored now, in one statement: the visit_ids stored
    now."""
    if not visits:
        return set()
    recording, recorded_by = caller.recording("write", VISIT_RECORD_FIELDS,
                                              "SELECT DISTINCT household_id FROM new", first=9)
    rows = await conn.fetch(
        "WITH new AS (INSERT INTO visit_records"
        " (visit_id, household_id, pendamping_id, captured_at, received_at, location, observations, notes)"
        " SELECT v, h, p, c, $5, l, o, n FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[],"
        "  $6::json[], $7::jsonb[], $8::text[]) AS t (v, h, p, c, l, o, n)"
        " ON CONFLICT (visit_id) DO NOTHING RETURNING visit_id, household_id),"
        f" recorded AS ({recording}),"
        f"{schedules.visited_sql('new', first=17)}"
        " SELECT visit_id FROM new",
        [v.visit_id for v in visits], [v.household_id for v in visits], [v.pendamping_id for v in visits],
        [v.captured_at for v in visits], received_at,
        [v.location.model_dump_json() if v.location else None for v in visits],
        [v.observations.model_dump_json() for v in visits], [v.notes for v in visits], *recorded_by,
        *schedules.visited_values(latest, planned))
    return {r["visit_id"] for r in rows}


def _data(visit: Visit, received_at: datetime) -> VisitRecordedData:
    # Every field but the notes: they may hold health data, and no consumer needs them.
    return VisitRecordedData(household_id=visit.household_id, visit_id=visit.visit_id,
                             pendamping_id=visit.pendamping_id, captured_at=visit.captured_at,
                             received_at=received_at, location=visit.location, observations=visit.observations)
