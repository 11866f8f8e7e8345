"""The visit schedule: when the pendamping must first see a newly registered family."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID, NAMESPACE_URL, uuid5

VISIT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:ejsika:monitoring:visit")


@dataclass(frozen=True)
class SchedulePolicy:
    first_visit_within_days: int = 14  # the pendamping verifies a new family's data within two weeks
    monthly_interval_days: int = 30


def first_visit(household_id: UUID, registered_on: date, policy: SchedulePolicy) -> tuple[UUID, date]:
    """The first visit of a household; its id is derived so a replayed event schedules it once."""
    return uuid5(VISIT_NAMESPACE, f"{household_id}/first_visit"), registered_on + timedelta(
        days=policy.first_visit_within_days
    )


def is_overdue(due: date, done: bool, today: date) -> bool:
    return not done and due < today
