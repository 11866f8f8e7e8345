"""Events emitted by monitoring about pendamping visits."""

from datetime import date
from typing import ClassVar, Literal
from uuid import UUID

from ..envelope import Contract, Event

VisitKind = Literal["first_visit", "monthly_session"]


class VisitScheduledData(Contract):
    household_id: UUID
    visit_id: UUID
    kind: VisitKind
    due_date: date


class VisitScheduled(Event):
    event_type: ClassVar[str] = "visit.scheduled"
    version: ClassVar[int] = 1
    type: Literal["visit.scheduled"] = "visit.scheduled"
    dataversion: Literal[1] = 1
    data: VisitScheduledData
