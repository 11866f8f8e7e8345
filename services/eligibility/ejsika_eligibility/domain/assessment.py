"""The assessment of one household under one rule set: pure, explained and reproducible.

The score is the plain sum of the points of the observed indicators (0-100), so the explanation a
family or the DPRD reads adds up to it exactly. Unobserved indicators earn nothing and are listed
as missing. The same inputs, day and rule set always give the same decision and fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ejsika_contracts import EligibilityAssessedData, ScoreContribution

from .rules import MemberCondition, RuleSet

Status = Literal["eligible", "not_eligible", "insufficient_data"]
# What agencies may count (MemberCounts of the event): PKH's age groups, whatever the rule set pays.
TODDLER_TO, SCHOOL_FROM, SCHOOL_TO, ENTERING_SMA, ELDERLY_FROM = 6, 7, 21, 15, 60


class _Tolerant(BaseModel):
    # The stored inputs are whatever the registry's events carried: unknown fields are not ours.
    model_config = ConfigDict(extra="ignore", frozen=True)


class MemberInputs(_Tolerant):
    member_id: UUID | None = None  # None for households registered with v1 events
    sex: Literal["F", "M"] | None = None
    birth_date: date
    in_school: bool = False
    pregnant: bool = False
    disability: bool = False


class Escalation(_Tolerant):
    """An escalated non-compliance from monitoring, put into the inputs by the input use cases."""

    kind: str
    period: str | None = None
    reason: str | None = None


class AssessmentInputs(_Tolerant):
    """What an assessment reads of a household: no NIK, no name."""

    household_id: UUID
    programme: str
    region_code: str
    members: tuple[MemberInputs, ...] = ()
    welfare: dict[str, bool | float | int | None] = {}
    # The registry's household version at which `welfare` was last observed (0: not known; inputs
    # stored before it was kept): the clock of the run towards mandiri.
    welfare_version: int = 0
    escalation: Escalation | None = None


@dataclass(frozen=True)
class Context:
    """What an assessment knows besides the household: its enrolment and its recent past.

    `prior_high` is how many welfare observations in a row just before the one assessed were at or
    above the graduation desil (`prior_high` below): it keeps `assess` pure while mandiri needs a streak.
    """

    prior_high: int = 0
    active: bool = False


@dataclass(frozen=True)
class Benefit:
    component: str
    member_id: UUID | None
    amount: int


@dataclass(frozen=True)
class Decision:
    household_id: UUID
    programme: str
    region_code: str
    rule_version: int
    rule_set: str
    status: Status
    score: int
    desil: int | None
    missing: tuple[str, ...]
    explanation: tuple[ScoreContribution, ...]
    benefits: tuple[Benefit, ...]
    graduation: Literal["mandiri", "alamiah"] | None
    proposed_exit: dict[str, str] | None
    fingerprint: str
    member_counts: dict[str, int] = field(default_factory=dict)

    @property
    def components(self) -> list[str]:
        return [b.component for b in self.benefits]

    @property
    def yearly_amount(self) -> int:
        return sum(b.amount for b in self.benefits)

    @property
    def eligible(self) -> bool:
        return self.status == "eligible"

    def outcome(self) -> tuple:
        """What a family is told: a change of any of these is announced, anything else is not."""
        return (self.status, self.desil, tuple(self.components), self.yearly_amount, self.graduation,
                (self.proposed_exit or {}).get("kind"))

    def event_data(self) -> EligibilityAssessedData:
        return EligibilityAssessedData.model_validate({
            "household_id": self.household_id, "programme": self.programme, "region_code": self.region_code,
            "rule_set": self.rule_set, "score": self.score, "eligible": self.eligible,
            "components": self.components, "member_counts": self.member_counts, "explanation": self.explanation,
            "rule_version": self.rule_version, "status": self.status, "desil": self.desil,
            "missing": list(self.missing), "yearly_amount": self.yearly_amount, "fingerprint": self.fingerprint,
            "benefits": [{"component": b.component, "member_id": b.member_id, "amount": b.amount}
                         for b in self.benefits],
            "graduation": self.graduation, "proposed_exit": self.proposed_exit,
        })


def age_on(born: date, day: date) -> int:
    """Whole years on `day` (a programme date); born 29 February, one is a year older on 1 March."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def qualifies(condition: MemberCondition, member: MemberInputs, age: int) -> bool:
    return ((condition.age_from is None or age >= condition.age_from)
            and (condition.age_to is None or age <= condition.age_to)
            and (condition.pregnant is None or member.pregnant == condition.pregnant)
            and (condition.disability is None or member.disability == condition.disability)
            and (condition.in_school is None or member.in_school == condition.in_school)
            and (condition.sex is None or member.sex == condition.sex))


def benefits(members: tuple[MemberInputs, ...], ages: list[int], rules: RuleSet) -> tuple[Benefit, ...]:
    """Every component each member earns, in the rule set's order of components (then members), at most
    `max_components` for the family."""
    earned = [Benefit(c.name, m.member_id, c.amount)
              for c in rules.components for m, age in zip(members, ages) if qualifies(c.member, m, age)]
    return tuple(earned[: rules.max_components])


def observed_value(value: Any) -> bool | float | None:
    """The canonical form of an observation: booleans stay, numbers become floats (450 and 450.0 are one)."""
    if value is None or isinstance(value, bool):
        return value
    return float(value)


@lru_cache(maxsize=8192)
def contribution(indicator: str, kind: type, observed: bool | float | None, points: int) -> ScoreContribution:
    """One explanation row, shared by every household that has it (rows are immutable).

    A rule set yields only a few distinct rows, and validating a new row per indicator per household
    cost more than the rest of an assessment. `kind` keeps True and 1.0 apart, which hash alike.
    """
    return ScoreContribution(indicator=indicator, observed=observed, points=points)


def fingerprint(rules: RuleSet, observed: list[bool | float | None],
                members: list[tuple[str | None, int, str | None, bool, bool, bool]],
                escalation: str | None, context: Context, *, welfare_version: int) -> str:
    """sha256 of the canonical JSON of what the decision was made from: the rule set, each indicator's
    observation and the household version it was observed at, each member as the rules see them on
    the day (age, not birth date), the escalation kind and the context. The bulk reassessment
    computes it from columns with this same function."""
    canonical = json.dumps([rules.id, observed, welfare_version, members, escalation, context.prior_high,
                            context.active], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def member_key(member: MemberInputs, age: int) -> tuple[str | None, int, str | None, bool, bool, bool]:
    return (str(member.member_id) if member.member_id else None, age, member.sex,
            member.in_school, member.pregnant, member.disability)


# Per rule set (kept alive here, so an id is never another's): each observation as stored -> its canonical value and
# its explanation row. A live assessment looked each indicator up afresh (the value made canonical, its band found,
# the shared row fetched): about a third of assessing a household.
_EXPLAINED: dict[int, tuple[RuleSet, dict[tuple, tuple[bool | float | None, ScoreContribution]]]] = {}
_EXPLAINED_MOST = 65_536  # rows a rule set keeps (numeric observations are many): past it, they are made again


def _explained(rules: RuleSet, welfare: dict[str, Any]
               ) -> tuple[list[bool | float | None], tuple[ScoreContribution, ...], tuple[str, ...]]:
    """The canonical observation of each indicator, its explanation row, and the indicators not observed."""
    kept = _EXPLAINED.get(id(rules))
    if kept is None or kept[0] is not rules:
        if len(_EXPLAINED) >= 64:
            _EXPLAINED.clear()
        kept = _EXPLAINED[id(rules)] = (rules, {})
    rows = kept[1]
    if len(rows) > _EXPLAINED_MOST:
        rows.clear()
    observed, explanation, missing = [], [], []
    for name in rules.order:
        raw = welfare.get(name)
        key = (name, type(raw), raw)  # the type keeps True and 1.0 apart, which hash alike
        row = rows.get(key)
        if row is None:
            value = observed_value(raw)
            row = rows[key] = (value, contribution(name, type(value), value, rules.indicators[name].points(value)))
        observed.append(row[0])
        explanation.append(row[1])
        if row[0] is None:
            missing.append(name)
    return observed, tuple(explanation), tuple(missing)


def assess(inputs: AssessmentInputs, rules: RuleSet, today: date, context: Context = Context()) -> Decision:
    observed, explanation, missing = _explained(rules, inputs.welfare)
    score = sum(c.points for c in explanation)
    ages = [age_on(m.birth_date, today) for m in inputs.members]
    earned = benefits(inputs.members, ages, rules)
    sufficient = len(rules.order) - len(missing) >= rules.min_observed
    desil = rules.desil_of(score) if sufficient else None
    status: Status = ("insufficient_data" if not sufficient
                      else "eligible" if desil <= rules.entry.max_desil and earned else "not_eligible")
    graduation = graduation_of(desil, earned, rules, context)
    escalation = inputs.escalation
    return Decision(
        household_id=inputs.household_id, programme=inputs.programme, region_code=inputs.region_code,
        rule_version=rules.version, rule_set=rules.id, status=status, score=score, desil=desil, missing=missing,
        explanation=explanation, benefits=earned, graduation=graduation,
        proposed_exit=proposed_exit(graduation, escalation, rules, context),
        fingerprint=fingerprint(rules, observed, [member_key(m, a) for m, a in zip(inputs.members, ages)],
                                escalation.kind if escalation else None, context,
                                welfare_version=inputs.welfare_version),
        member_counts=counts(inputs.members, ages),
    )


def graduation_of(desil: int | None, earned: tuple[Benefit, ...], rules: RuleSet,
                  context: Context) -> Literal["mandiri", "alamiah"] | None:
    """alamiah: an active family with no component left; mandiri: prosperous enough, long enough."""
    if context.active and not earned:
        return "alamiah"
    if desil is not None and desil >= rules.graduation.min_desil and context.prior_high + 1 >= rules.graduation.consecutive:
        return "mandiri"
    return None


@dataclass(frozen=True)
class Standing:
    """Where the decision in force left a household's run towards mandiri."""

    rule_version: int
    welfare_version: int
    desil: int | None
    prior_high: int


def prior_high(standing: Standing | None, welfare_version: int, rules: RuleSet) -> int:
    """The run of welfare observations at or above the graduation desil just before the one at
    `welfare_version`, from the decision in force.

    "desil >= min_desil in `consecutive` consecutive assessments" counts *welfare observations*, not
    decisions: the desil depends on the welfare indicators alone, which only the registry states, in
    its household version order (one partition, the version guard). How many decisions a family gets
    depends on how the registry's, visits' and verifications' topics interleave (a visit read before
    or after a welfare update), which a replay does not repeat; the registry's order it does. So a
    decision on a newer observation moves the run (the previous observation high: one more; else it
    starts again), and a decision on the same one (a visit, a member, an enrolment, a birthday, a
    replay) keeps it as it is.

    The run is counted under one rule set: the desil of an earlier observation under another version
    is not known (only the current observation is kept), so a decision under a version other than
    the one in force starts the run again from the observation at hand (0).
    """
    if standing is None or standing.rule_version != rules.version:
        return 0
    if welfare_version <= standing.welfare_version:
        return standing.prior_high
    high = standing.desil is not None and standing.desil >= rules.graduation.min_desil
    return standing.prior_high + 1 if high else 0


def proposed_exit(graduation: str | None, escalation: Escalation | None, rules: RuleSet,
                  context: Context) -> dict[str, str] | None:
    """An exit for an operator to confirm in the registry; only an active family can leave."""
    if not context.active:
        return None
    if escalation is not None:
        period = f" in {escalation.period}" if escalation.period else ""
        return {"kind": "paksa", "reason": escalation.reason or f"non-compliance escalated{period}"}
    if graduation == "mandiri":
        g = rules.graduation
        return {"kind": "mandiri",
                "reason": f"desil {g.min_desil} or above in {g.consecutive} welfare assessments in a row"}
    if graduation == "alamiah":
        return {"kind": "alamiah", "reason": "no benefit component left"}
    return None


def counts(members: tuple[MemberInputs, ...], ages: list[int]) -> dict[str, int]:
    """The MemberCounts of the event; pupils of 15 are finishing SMP, so enter SMA next. One pass over the members
    (a live assessment counts them for every household)."""
    pregnant = toddlers = school = entering = elderly = disabled = 0
    for m, a in zip(members, ages):
        pregnant += m.pregnant
        disabled += m.disability
        if a <= TODDLER_TO:
            toddlers += 1
        elif a >= ELDERLY_FROM:
            elderly += 1
        if m.in_school:
            school += SCHOOL_FROM <= a <= SCHOOL_TO
            entering += a == ENTERING_SMA
    return {"pregnant": pregnant, "toddlers": toddlers, "school_children": school, "children_entering_sma": entering,
            "elderly": elderly, "disabled": disabled}


def birthday(born: date, age: int) -> date:
    """The day a person born on `born` turns `age` (1 March for 29 February outside leap years)."""
    try:
        return born.replace(year=born.year + age)
    except ValueError:
        return date(born.year + age, 3, 1)


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def next_review(inputs: AssessmentInputs, rules: RuleSet, today: date) -> date:
    """The first day after `today` on which the decision may change with time alone: a member enters or
    leaves a component's age bounds, or the recertification is due."""
    due = add_months(today, rules.recertify_every_months)
    bounds = rules.age_steps
    horizon = due.year - today.year + 1  # no birthday past this many years from now comes before `due`
    for member in inputs.members:
        age = age_on(member.birth_date, today)
        for step in bounds:
            if age < step <= age + horizon:  # the birthdays already past, or too far, are not computed
                day = birthday(member.birth_date, step)
                if today < day < due:
                    due = day
    return due

