"""Use case: follow each newly registered household and schedule its first visit."""

from __future__ import annotations

from ejsika_contracts import HouseholdRegistered, HouseholdRegisteredV2, VisitScheduled, VisitScheduledData
from ejsika_runtime import scopes
from ejsika_runtime.programme_time import programme_date
from ejsika_runtime.unit_of_work import UnitOfWork

from .domain.schedule import SchedulePolicy, first_visit

SOURCE = "monitoring"
POLICY = SchedulePolicy()


async def on_registered(uow: UnitOfWork, events: list[HouseholdRegistered | HouseholdRegisteredV2]) -> None:
    scheduled = []
    for event in events:
        visit_id, due = first_visit(event.data.household_id, programme_date(event.time), POLICY)
        data = VisitScheduledData(household_id=event.data.household_id, visit_id=visit_id, kind="first_visit",
                                  due_date=due)
        scheduled.append(VisitScheduled.caused_by(event, source=SOURCE, data=data))
    await uow.conn.execute(
        "INSERT INTO households (household_id, programme, region_code, registered_at)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])"
        " ON CONFLICT (household_id) DO NOTHING",
        [e.data.household_id for e in events],
        [e.data.programme for e in events],
        [e.data.region_code for e in events],
        [e.time for e in events],
    )
    rows = await uow.conn.fetch(
        "INSERT INTO visits (visit_id, household_id, kind, due_date)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::date[])"
        " ON CONFLICT (visit_id) DO NOTHING RETURNING visit_id",
        [s.data.visit_id for s in scheduled],
        [s.data.household_id for s in scheduled],
        [s.data.kind for s in scheduled],
        [s.data.due_date for s in scheduled],
    )
    await scopes.follow(uow.conn, SOURCE, events, "scheduling the visits of a family", ("programme", "region_code"))
    new = {r["visit_id"] for r in rows}
    uow.emit_all([s for s in scheduled if s.data.visit_id in new])
