"""DCI-style subscriptions: an agency asks for one event type, filtered, immediately or as a daily digest.

The DCI Social Registry API lets another agency subscribe with criteria (an event type, a filter,
a frequency) and notifies it. Here the filter is a fixed set of named criteria rather than a free
expression: each can be checked precisely when the subscription is made (422 naming the field and
the rule), and matched without evaluating anything an agency wrote.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import AfterValidator, BaseModel

from ejsika_contracts import (
    ComplianceEscalated,
    ComplianceEscalatedData,
    ComplianceVerified,
    ComplianceVerifiedData,
    EligibilityAssessed,
    EligibilityAssessedData,
    EnrolmentChanged,
    EnrolmentChangedData,
    VisitRecorded,
    VisitRecordedData,
)
from ejsika_contracts.events.eligibility import QuotaAdmitted, QuotaAdmittedData
from ejsika_contracts.events.household import EnrolmentStatus
from ejsika_contracts.events.monitoring import EscalationKind

from .agencies import COMMITMENT_GRANTS, FAMILY_FIELDS, MEMBER_PATHS, Profile, field_paths
from .families import SCHOOL_LEVELS, FamilyMember, age_on, school_level

CHILDREN_ENTERING_SMA = "children.entering_sma"
FAMILIES_WITHOUT_HEALTH_INSURANCE = "families.without_health_insurance"


class EnteringSmaData(BaseModel):
    """The derived fact "children of KPM entering SMA next school year" (the members are the children)."""

    programme: str
    region_code: str
    school_year: str  # the school year in which they finish SMP, e.g. 2026/2027
    entering_school_year: str  # the one in which they enter SMA (or SMK), e.g. 2027/2028


class WithoutHealthInsuranceData(BaseModel):
    """The derived fact "KPM families without health insurance" (the members are those outside JKN)."""

    programme: str
    region_code: str
    year: int  # the calendar year of the PBI-JKN quota the members could enter


# The event types an agency may subscribe to, with the model of their data (what a profile names).
EVENT_TYPES: dict[str, type[BaseModel]] = {
    EligibilityAssessed.event_type: EligibilityAssessedData,
    QuotaAdmitted.event_type: QuotaAdmittedData,
    EnrolmentChanged.event_type: EnrolmentChangedData,
    VisitRecorded.event_type: VisitRecordedData,
    ComplianceVerified.event_type: ComplianceVerifiedData,
    ComplianceEscalated.event_type: ComplianceEscalatedData,
    CHILDREN_ENTERING_SMA: EnteringSmaData,
    FAMILIES_WITHOUT_HEALTH_INSURANCE: WithoutHealthInsuranceData,
}
# Event types that are health data in themselves (a family lacks cover): heard of only by an agency
# whose profile names the field they reveal, whatever else it may see.
EVENT_GRANTS = {FAMILIES_WITHOUT_HEALTH_INSURANCE: "members.health_insurance"}
# Never sent, whatever a profile says: the registry's and the platform's own identifiers. A
# member's id becomes the agency's reference of the member, under the name `member`.
INTERNAL_FIELDS = frozenset({"household_id", "visit_id", "pendamping_id", "version", "from_household_id",
                             "new_household_id", "previous_member_id", "head_member_id",
                             "previous_head_member_id"})
# Event fields renamed in the payload, where the event's name is taken by the members of the notice.
RENAMED = {ComplianceVerified.event_type: {"members": "commitments"}}


def fact_paths(event_type: str) -> frozenset[str]:
    """The dotted paths of an event type's facts in a payload (its data, less the internal ids)."""
    renamed = RENAMED.get(event_type, {})
    paths = set()
    for path in field_paths(EVENT_TYPES[event_type]):
        top, *rest = path.split(".")
        if top in INTERNAL_FIELDS:
            continue
        top = "member" if top == "member_id" else renamed.get(top, top)
        paths.add(".".join([top, *rest]))
    return frozenset(paths)


FACT_FIELDS: frozenset[str] = frozenset().union(*(fact_paths(t) for t in EVENT_TYPES))
KNOWN_FIELDS: frozenset[str] = FACT_FIELDS | FAMILY_FIELDS | MEMBER_PATHS | COMMITMENT_GRANTS

# Kemendagri levels: province (36), regency/city (3672), district (367201), village (3672011001).
REGION_PREFIX_LENGTHS = (0, 2, 4, 6, 10)
MAX_AGE = 120
Frequency = Literal["immediate", "daily_digest"]
FREQUENCIES: tuple[str, ...] = get_args(Frequency)
ENROLMENT_STATUSES: tuple[str, ...] = get_args(EnrolmentStatus)
ESCALATION_KINDS: tuple[str, ...] = get_args(EscalationKind)

SECRET_PREFIX = "whsec_"
# The Standard Webhooks recommendation for HMAC-SHA256 keys.
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64


@dataclass(frozen=True)
class Filter:
    """The criteria of a subscription, in the spirit of the DCI Social Registry's subscribe request
    (an event type, a filter over the record's attributes, a frequency). Every criterion given must
    hold; an empty one (``""``, ``()``, None) holds for every family.

    Member criteria (age, school level) choose the members a notification is about: a family
    matches when one of the members its event concerns meets them, and only those are sent.
    """

    region_prefix: str = ""
    eligible_only: bool = False
    programmes: tuple[str, ...] = ()
    enrolment_statuses: tuple[str, ...] = ()
    member_age_min: int | None = None
    member_age_max: int | None = None
    school_levels: tuple[str, ...] = ()
    escalation_kinds: tuple[str, ...] = ()

    @property
    def chooses_members(self) -> bool:
        return self.member_age_min is not None or self.member_age_max is not None or bool(self.school_levels)

    def admits(self, *, region: str | None, programme: str | None, enrolment_status: str | None,
               eligible: bool | None, kind: str | None) -> bool:
        """Whether the family-level criteria hold (a value unknown fails the criterion that needs it)."""
        return (
            (region or "").startswith(self.region_prefix) and (bool(region) or not self.region_prefix)
            and (not self.eligible_only or eligible is True)
            and (not self.programmes or programme in self.programmes)
            and (not self.enrolment_statuses or enrolment_status in self.enrolment_statuses)
            and (not self.escalation_kinds or kind in self.escalation_kinds)
        )

    def admits_member(self, member: FamilyMember, on: date) -> bool:
        age = age_on(member.birth_date, on)
        return (
            (self.member_age_min is None or age >= self.member_age_min)
            and (self.member_age_max is None or age <= self.member_age_max)
            and (not self.school_levels or school_level(member, on) in self.school_levels)
        )

    def as_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Filter:
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items() if k in known})


def filter_problems(event_type: str, filter: Filter) -> list[tuple[str, str, str]]:
    """The rules `filter` breaks for `event_type`, as (field, rule, reason); never a value."""
    problems = []
    if region_problem := region_prefix_problem(filter.region_prefix):
        problems.append(("filter.region_prefix", "region_prefix", region_problem))
    if filter.eligible_only and event_type != EligibilityAssessed.event_type:
        problems.append(("filter.eligible_only", "applies_to",
                         f"eligible_only applies to {EligibilityAssessed.event_type} only"))
    if filter.escalation_kinds and event_type != ComplianceEscalated.event_type:
        problems.append(("filter.escalation_kinds", "applies_to",
                         f"escalation_kinds applies to {ComplianceEscalated.event_type} only"))
    for name in ("member_age_min", "member_age_max"):
        value = getattr(filter, name)
        if value is not None and not 0 <= value <= MAX_AGE:
            problems.append((f"filter.{name.replace('member_age_', 'member_age.')}", "age",
                             f"an age is 0 to {MAX_AGE} years"))
    if (filter.member_age_min is not None and filter.member_age_max is not None
            and filter.member_age_min > filter.member_age_max):
        problems.append(("filter.member_age", "age_range", "min must not exceed max"))
    for name, allowed in (("school_levels", SCHOOL_LEVELS), ("enrolment_statuses", ENROLMENT_STATUSES),
                          ("escalation_kinds", ESCALATION_KINDS)):
        values = getattr(filter, name)
        if any(v not in allowed for v in values):
            problems.append((f"filter.{name}", "one_of", f"each must be one of {', '.join(allowed)}"))
        if len(set(values)) != len(values):
            problems.append((f"filter.{name}", "unique", "each value once"))
    return problems


@dataclass(frozen=True)
class Subscription:
    id: UUID
    agency: str
    event_type: str
    filter: Filter
    profile: Profile  # the agency's, at the time the subscriptions were loaded
    active: bool = True
    frequency: str = "immediate"

    def hears_of(self, commitment: str | None) -> bool:
        """Whether the agency may hear of this commitment's compliance (see COMMITMENT_GRANTS)."""
        return commitment is None or f"compliance.{commitment}" in self.profile


def region_prefix_problem(prefix: str) -> str | None:
    if not prefix.isdigit() and prefix != "":
        return "region prefix must be digits of a Kemendagri code, without dots"
    if len(prefix) not in REGION_PREFIX_LENGTHS:
        return "region prefix must be a province (2 digits), regency/city (4), district (6) or village (10) code"
    return None


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_problem(secret: str) -> str | None:
    """Why `secret` is not a usable Standard Webhooks signing secret, or None. Never echoes it."""
    if not secret.startswith(SECRET_PREFIX):
        return f"secret must start with {SECRET_PREFIX}"
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return "secret must be whsec_ followed by base64"
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        return f"secret must hold {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} random bytes"
    return None


def _usable_secret(secret: str) -> str:
    if problem := secret_problem(secret):
        raise ValueError(problem)
    return secret


WebhookSecret = Annotated[str, AfterValidator(_usable_secret)]
