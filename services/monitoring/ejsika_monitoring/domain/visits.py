"""When a kunjungan (a pendamping's visit) uploaded from the app is taken, and why it is refused.

Pure rules, no I/O. A visit is judged by when it happened on the device (`captured_at`), never by
when it arrived: apps work offline and upload days late, twice, or in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID


@dataclass(frozen=True)
class Violation:
    """A rule a visit broke: the field, the rule's name and why (never the submitted value)."""

    field: str
    rule: str
    reason: str


@dataclass(frozen=True)
class VisitPolicy:
    # A phone's clock may run a little ahead of the server's, or behind the registry's.
    clock_skew: timedelta = timedelta(seconds=300)


@dataclass(frozen=True)
class KnownHousehold:
    """What monitoring knows of a household when a visit of it arrives."""

    household_id: UUID
    registered_at: datetime
    covered: bool  # in the caller's caseload, area or programme


UNKNOWN = Violation("household_id", "household_unknown",
                    "monitoring does not know this household (yet): upload the visit again later")
OUT_OF_SCOPE = Violation("household_id", "household_scope", "the household is outside your caseload, area or programme")
IN_FUTURE = Violation("captured_at", "captured_in_future", "the visit is dated in the future: check the device's clock")
BEFORE_REGISTRATION = Violation("captured_at", "before_registration",
                                "the visit is dated before the household was registered")
OTHER_PENDAMPING = Violation("pendamping_id", "pendamping_own",
                             "a pendamping records their own visits only")


def is_in_future(captured_at: datetime, received_at: datetime, policy: VisitPolicy) -> bool:
    return captured_at > received_at + policy.clock_skew


def is_before_registration(captured_at: datetime, registered_at: datetime, policy: VisitPolicy) -> bool:
    """The same tolerance applies: the registering phone and the visiting phone may disagree on the time
    (a visit captured at the registration itself must not be refused for a clock a minute behind)."""
    return captured_at < registered_at - policy.clock_skew


def refusals(captured_at: datetime, received_at: datetime, household: KnownHousehold | None,
             policy: VisitPolicy) -> tuple[Violation, ...]:
    """Every reason to refuse a visit, or none.

    An unknown household is told apart from one outside the caller's scope: the first is usually a
    registration whose event has not reached monitoring yet, and the app should retry later.
    """
    found = [IN_FUTURE] if is_in_future(captured_at, received_at, policy) else []
    if household is None:
        return (*found, UNKNOWN)
    if not household.covered:
        return (*found, OUT_OF_SCOPE)  # when it was registered is not the caller's to learn
    if is_before_registration(captured_at, household.registered_at, policy):
        found.append(BEFORE_REGISTRATION)
    return tuple(found)


def first_of_each(visit_ids: list[UUID]) -> list[bool]:
    """For each position, whether it is the first of its visit_id in the batch: the later ones are
    the same visit synced twice, answered as duplicates."""
    seen: set[UUID] = set()
    first = []
    for visit_id in visit_ids:
        first.append(visit_id not in seen)
        seen.add(visit_id)
    return first
