"""The topic catalogue: every topic, its partitions, its events and its dead-letter topic.

Declared once here; services, the relay, the `ejsika topics create` command and the deployment
all read it. Every topic is keyed by the event's `subject` (the household id).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Union

from pydantic import Discriminator, Tag, TypeAdapter

from .envelope import Event
from .events.agency import AgencyAnswered
from .events.eligibility import EligibilityAssessed, QuotaAdmitted
from .events.household import (
    EnrolmentChanged,
    HeadChanged,
    HouseholdRegistered,
    HouseholdRegisteredV2,
    HouseholdSplit,
    HouseholdUpdated,
    MemberAdded,
    MemberEnded,
    MemberFlagged,
    MemberMoved,
    MemberUpdated,
)
from .events.monitoring import ComplianceEscalated, ComplianceVerified, VisitOverdue, VisitRecorded, VisitScheduled

DEAD_LETTER_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    events: tuple[type[Event], ...]
    description: str

    @property
    def dead_letter(self) -> str:
        return self.name + DEAD_LETTER_SUFFIX

    @cached_property
    def reader(self) -> TypeAdapter:
        """Validates raw bytes into the right event class, chosen by `type` and `dataversion`."""
        if len(self.events) == 1:
            return TypeAdapter(self.events[0])
        tagged = tuple(Annotated[cls, Tag(cls.schema_name())] for cls in self.events)
        return TypeAdapter(Annotated[Union[tagged], Discriminator(_schema_name_of)])

    def parse(self, raw: bytes) -> Event:
        """Read one record as its event, tolerantly: readers accept a newer compatible version.

        The models forbid unknown fields, so producing code cannot build an event with one. A
        reader ignores them instead, at every level (envelope, data, members, ...): they are the
        optional fields of a newer compatible version. Wrong types, missing required fields and
        an unknown `type` or `dataversion` are still refused.
        """
        return self.reader.validate_json(raw, extra="ignore")


def _schema_name_of(value: object) -> str | None:
    if isinstance(value, dict):
        return f"{value.get('type')}.v{value.get('dataversion')}"
    return getattr(value, "schema_name", lambda: None)()


HOUSEHOLD = Topic(
    "ejsika.household",
    partitions=6,
    # household.registered v1 is no longer produced (every consumer here reads v2); it stays
    # readable for the records already in the topic.
    events=(HouseholdRegistered, HouseholdRegisteredV2, HouseholdUpdated, MemberAdded, MemberUpdated, MemberEnded,
            MemberMoved, HeadChanged, HouseholdSplit, EnrolmentChanged, MemberFlagged),
    description="Registry: households (KPM), members, enrolment and exit.",
)
ELIGIBILITY = Topic(
    "ejsika.eligibility",
    partitions=6,
    events=(EligibilityAssessed, QuotaAdmitted),
    description="Eligibility: scores, eligibility, graduation and quota decisions.",
)
VISIT = Topic(
    "ejsika.visit",
    partitions=6,
    events=(VisitScheduled, VisitRecorded, VisitOverdue),
    description="Monitoring: pendamping visit schedule and visits.",
)
COMPLIANCE = Topic(
    "ejsika.compliance",
    partitions=6,
    events=(ComplianceVerified, ComplianceEscalated),
    description="Monitoring: verification of commitments (verifikasi komitmen) per period, and escalations.",
)

AGENCY = Topic(
    "ejsika.agency",
    partitions=6,
    events=(AgencyAnswered,),
    description="Notifications: the agencies' (OPD) answers to what they were told of a family.",
)

TOPICS: tuple[Topic, ...] = (HOUSEHOLD, ELIGIBILITY, VISIT, COMPLIANCE, AGENCY)
ALL_EVENTS: tuple[type[Event], ...] = tuple(cls for topic in TOPICS for cls in topic.events)


def topic_of(event: Event | type[Event]) -> Topic:
    cls = event if isinstance(event, type) else type(event)
    for topic in TOPICS:
        if cls in topic.events:
            return topic
    raise LookupError(f"event {cls.__name__} is on no topic of the catalogue")


def topic_named(name: str) -> Topic:
    for topic in TOPICS:
        if name in (topic.name, topic.dead_letter):
            return topic
    raise LookupError(f"no topic {name!r} in the catalogue")
