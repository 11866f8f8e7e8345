"""Verifikasi komitmen: whether each member kept the commitment of their component in a period.

Pure: given a household's members and the visits captured in a period, the result is a function of
the visits' content and their `captured_at`, never of the order in which they arrived (an offline
app uploads late, twice, out of order). Ages count at the period's last day, in Asia/Jakarta.

Commitments (PKH defaults, see DOMAIN.md; programme configuration may change them):
- school: a child aged 7–21 (inclusive, in whole years at the period's end) attends at least 85 % of
  school days: sum(days_present) / sum(school_days) over the visits of the period, and is enrolled
  in every observation of it. No school day in the period (holidays): not verifiable.
- antenatal: a pregnant member has at least one antenatal check-up observed in the period.
- toddler: a child aged 0–59 months is weighed and immunised on schedule (each observed in at least
  one visit of the period).
A member with a commitment and no observation of it in the period is `not_verifiable`.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from uuid import UUID

from ejsika_contracts.events.monitoring import (
    Commitment,
    ComplianceResult,
    EscalationKind,
    MemberCompliance,
    Observations,
)
from ejsika_runtime.programme_time import programme_date


@dataclass(frozen=True)
class Commitments:
    """A programme's commitments. The defaults are PKH's; `domain/programmes.py` (programmes.json,
    `commitments` block) overrides them per programme when present."""

    school_attendance_min: float = 0.85
    school_age: tuple[int, int] = (7, 21)
    toddler_age_months: tuple[int, int] = (0, 59)
    escalate_after_periods: int = 3
    period_months: int = 1  # monthly; 3 = quarterly, and so on (periods start in January)


DEFAULT_COMMITMENTS = Commitments()

ESCALATION: dict[Commitment, EscalationKind] = {
    "school": "school_dropout_risk",
    "antenatal": "no_antenatal_care",
    "toddler": "toddler_not_monitored",
}


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # the last day, inclusive

    def holds(self, day: date) -> bool:
        return self.start <= day <= self.end


def period_of(day: date, commitments: Commitments = DEFAULT_COMMITMENTS) -> Period:
    """The period holding `day`: calendar months grouped by `period_months`, the first one in January."""
    months = commitments.period_months
    first_month = (day.month - 1) // months * months + 1
    last_month = first_month + months - 1
    return Period(date(day.year, first_month, 1),
                  date(day.year, last_month, calendar.monthrange(day.year, last_month)[1]))


def previous_period(period: Period, commitments: Commitments = DEFAULT_COMMITMENTS) -> Period:
    return period_of(date.fromordinal(period.start.toordinal() - 1), commitments)


def last_finished_period(today: date, commitments: Commitments = DEFAULT_COMMITMENTS) -> Period:
    """The most recent period that ended before `today` (a period closes the day after its end)."""
    return previous_period(period_of(today, commitments), commitments)


@dataclass(frozen=True)
class MemberFacts:
    """What verification needs of a member (the members projection): no name, no NIK."""

    member_id: UUID
    birth_date: date
    sex: str
    pregnant: bool


@dataclass(frozen=True)
class Visit:
    visit_id: UUID
    captured_at: datetime
    observations: Observations


def age_in_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def age_in_months(birth: date, on: date) -> int:
    return (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)


def commitments_of(member: MemberFacts, period: Period, c: Commitments = DEFAULT_COMMITMENTS) -> list[Commitment]:
    """The commitments a member has in `period`, by their age on its last day and their pregnancy."""
    if member.birth_date > period.end:
        return []  # not born yet at the period's end
    found: list[Commitment] = []
    years, months = age_in_years(member.birth_date, period.end), age_in_months(member.birth_date, period.end)
    if c.school_age[0] <= years <= c.school_age[1]:
        found.append("school")
    if c.toddler_age_months[0] <= months <= c.toddler_age_months[1]:
        found.append("toddler")
    if member.pregnant:
        found.append("antenatal")
    return found


def _school(member_id: UUID, visits: Sequence[Visit], c: Commitments) -> MemberCompliance:
    seen = [s for v in visits for s in v.observations.school if s.member_id == member_id]
    if not seen:
        return MemberCompliance(member_id=member_id, commitment="school", result="not_verifiable")
    present, days = sum(s.days_present for s in seen), sum(s.school_days for s in seen)
    enrolled = all(s.enrolled for s in seen)
    if not enrolled:
        rate = Fraction(present, days) if days else None
        return MemberCompliance(member_id=member_id, commitment="school", result="non_compliant",
                                attendance_rate=None if rate is None else round(float(rate), 4))
    if days == 0:
        return MemberCompliance(member_id=member_id, commitment="school", result="not_verifiable")
    rate = Fraction(present, days)
    # Compared as fractions: 17/20 is exactly 0.85, which floating point would not promise.
    ok = rate >= Fraction(str(c.school_attendance_min))
    return MemberCompliance(member_id=member_id, commitment="school", result="compliant" if ok else "non_compliant",
                            attendance_rate=round(float(rate), 4))


def _antenatal(member_id: UUID, visits: Sequence[Visit]) -> MemberCompliance:
    seen = [a for v in visits for a in v.observations.antenatal if a.member_id == member_id]
    result: ComplianceResult = ("not_verifiable" if not seen else
                                "compliant" if any(a.checked for a in seen) else "non_compliant")
    return MemberCompliance(member_id=member_id, commitment="antenatal", result=result)


def _toddler(member_id: UUID, visits: Sequence[Visit]) -> MemberCompliance:
    seen = [t for v in visits for t in v.observations.toddlers if t.member_id == member_id]
    ok = any(t.weighed for t in seen) and any(t.immunised_on_schedule for t in seen)
    result: ComplianceResult = "not_verifiable" if not seen else "compliant" if ok else "non_compliant"
    return MemberCompliance(member_id=member_id, commitment="toddler", result=result)


@dataclass(frozen=True)
class HouseholdVerification:
    result: ComplianceResult
    members: list[MemberCompliance] = field(default_factory=list)


def verify_household(
    members: Iterable[MemberFacts] | None, visits: Iterable[Visit], period: Period,
    c: Commitments = DEFAULT_COMMITMENTS,
) -> HouseholdVerification | None:
    """The household's result in `period`, or None when no member has a commitment (nothing to verify:
    no result is published).

    `members` None means monitoring does not know the household's members yet (registered with
    household.registered v1, which names no member ids): not verifiable until a v2 event names them.
    Only the visits captured in the period count (their Asia/Jakarta date), whatever their order.
    """
    if members is None:
        return HouseholdVerification("not_verifiable", [])
    in_period = [v for v in visits if period.holds(programme_date(v.captured_at))]
    checks: list[MemberCompliance] = []
    for member in members:
        for commitment in commitments_of(member, period, c):
            if commitment == "school":
                checks.append(_school(member.member_id, in_period, c))
            elif commitment == "antenatal":
                checks.append(_antenatal(member.member_id, in_period))
            else:
                checks.append(_toddler(member.member_id, in_period))
    if not checks:
        return None
    checks.sort(key=lambda m: (m.commitment, str(m.member_id)))
    return HouseholdVerification(household_result(m.result for m in checks), checks)


def household_result(results: Iterable[ComplianceResult]) -> ComplianceResult:
    """non_compliant if any member is, else not_verifiable if any is, else compliant."""
    seen = set(results)
    if "non_compliant" in seen:
        return "non_compliant"
    if "not_verifiable" in seen:
        return "not_verifiable"
    return "compliant"


@dataclass(frozen=True)
class Escalation:
    member_id: UUID
    commitment: Commitment
    kind: EscalationKind
    consecutive_periods: int


def run_length(history: Sequence[ComplianceResult | None]) -> int:
    """How many periods, ending with the last of `history` (oldest first), were non-compliant in a row.
    Any other result (compliant, not verifiable, no commitment: None) ends a run."""
    count = 0
    for result in reversed(history):
        if result != "non_compliant":
            break
        count += 1
    return count


def escalations(
    current: Sequence[MemberCompliance], previous: Sequence[Sequence[MemberCompliance]],
    c: Commitments = DEFAULT_COMMITMENTS,
) -> list[Escalation]:
    """The escalations the current period raises: a member non-compliant on one commitment for exactly
    `escalate_after_periods` consecutive periods, so once per run (the next period of the same run is
    longer than that; a period that is not non-compliant starts a new run).

    `previous`: the member results of the periods before the current one, oldest first (at least
    `escalate_after_periods` of them to tell a run of exactly that length; fewer means the household
    had no result then).
    """
    need = c.escalate_after_periods
    by_period = [{(m.member_id, m.commitment): m.result for m in period} for period in previous]
    raised = []
    for m in current:
        key = (m.member_id, m.commitment)
        history: list[ComplianceResult | None] = [p.get(key) for p in by_period[-need:]] + [m.result]
        if run_length(history) == need:
            raised.append(Escalation(m.member_id, m.commitment, ESCALATION[m.commitment], need))
    return raised


def periods_back(period: Period, count: int, c: Commitments = DEFAULT_COMMITMENTS) -> list[Period]:
    """The `count` periods before `period`, oldest first."""
    found, p = [], period
    for _ in range(count):
        p = previous_period(p, c)
        found.append(p)
    return found[::-1]

