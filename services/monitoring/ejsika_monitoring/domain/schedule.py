"""The visit schedule of a household: when the pendamping must see an active family next.

- Only a family ACTIVE in a programme is scheduled. Its activation makes a first visit due within
  `first_visit_within_days`; a suspension or an exit cancels what is due and ends an overdue state.
- A due visit covers a period, from `opens_on` to its due date. A visit captured (on the device, in
  Asia/Jakarta days) on or after `opens_on` closes it: early within its period or late after it.
- The next visit is due `interval_days` after the LATEST visit of the household. A late upload of an
  older visit (offline apps upload days later, out of order) never moves the schedule back.
- A household becomes overdue once, when its due date has passed (the overdue check), and a visit
  that closes what was due ends it, unless the next due date it leads to has passed as well (a very
  late upload does not bring the family up to date).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from .programmes import MonitoredProgramme

VISIT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:ejsika:monitoring:visit")

Kind = Literal["first_visit", "monthly_session"]


@dataclass(frozen=True)
class Due:
    """An open due visit: its id, its kind, and the period it covers."""

    visit_id: UUID
    kind: Kind
    opens_on: date
    due_date: date

    def closed_by(self, visited_on: date) -> bool:
        return visited_on >= self.opens_on


@dataclass(frozen=True)
class Schedule:
    """A household's schedule as stored: whether it is active, its open due visit, overdue, last visit."""

    household_id: UUID
    active: bool
    interval_days: int = 30
    due: Due | None = None
    overdue_since: date | None = None
    last_visit_on: date | None = None


@dataclass(frozen=True)
class Change:
    """What a step did to a schedule: the new schedule, the due visit it closed or cancelled, the one it
    scheduled, and whether the overdue state ended (True), began (never here: the check does it) or not."""

    schedule: Schedule
    closed: Due | None = None
    cancelled: Due | None = None
    scheduled: Due | None = None
    overdue_ended: bool = False


def due_id(household_id: UUID, cause: UUID) -> UUID:
    """A due visit's id, derived from what caused it, so a replayed cause schedules it once."""
    return uuid5(VISIT_NAMESPACE, f"{household_id}/{cause}")


def activated(schedule: Schedule, programme: MonitoredProgramme, on: date, cause: UUID) -> Change:
    """The household became active in `programme` on `on`: the first visit is due within the programme's
    days, unless a visit is due already (then only the interval may shorten)."""
    interval = min(programme.visit_interval_days, schedule.interval_days) if schedule.active \
        else programme.visit_interval_days
    now = replace(schedule, active=True, interval_days=interval)
    if schedule.due is not None:
        return Change(now)
    kind: Kind = "first_visit" if schedule.last_visit_on is None else "monthly_session"
    due = Due(due_id(schedule.household_id, cause), kind, on, on + timedelta(days=programme.first_visit_within_days))
    return Change(replace(now, due=due), scheduled=due)


def left(schedule: Schedule) -> Change:
    """The household is no longer active (suspended, exited): nothing is due, nor overdue."""
    return Change(replace(schedule, active=False, due=None, overdue_since=None), cancelled=schedule.due,
                  overdue_ended=schedule.overdue_since is not None)


def visited(schedule: Schedule, visited_on: date, today: date, cause: UUID) -> Change:
    """A visit captured on `visited_on` (the latest of a batch for this household) arrived."""
    latest = max(visited_on, schedule.last_visit_on or visited_on)
    now = replace(schedule, last_visit_on=latest)
    closed = schedule.due if schedule.due is not None and schedule.due.closed_by(visited_on) else None
    if schedule.due is not None and closed is None:
        return Change(now)  # an older visit, or one before the period of what is due: nothing moves
    if not schedule.active:
        return Change(replace(now, due=None, overdue_since=None), closed=closed,
                      overdue_ended=schedule.overdue_since is not None)
    due = Due(due_id(schedule.household_id, cause), "monthly_session", latest + timedelta(days=1),
              latest + timedelta(days=schedule.interval_days))
    still_overdue = schedule.overdue_since is not None and due.due_date < today
    return Change(replace(now, due=due, overdue_since=schedule.overdue_since if still_overdue else None),
                  closed=closed, scheduled=due,
                  overdue_ended=schedule.overdue_since is not None and not still_overdue)


def is_overdue(due: date, done: bool, today: date) -> bool:
    return not done and due < today
