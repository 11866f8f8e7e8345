"""The assessment of one household: a deprivation score with its explanation, and components."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from ejsika_contracts import EligibilityAssessedData, HouseholdRegisteredData, ScoreContribution
from ejsika_contracts.events.household import Member, WelfareIndicators

from .rules import RuleSet

SMALL_FLOOR_AREA_M2 = 8.0


def observations(welfare: WelfareIndicators) -> dict[str, bool | float | int | None]:
    """Each BPS criterion as observed: True when the deprivation holds, None when not observed."""
    observed: dict[str, bool | float | int | None] = welfare.model_dump(exclude={"floor_area_per_person_m2",
                                                                          "installed_power_va"})
    area = welfare.floor_area_per_person_m2
    observed["small_floor_area"] = None if area is None else area < SMALL_FLOOR_AREA_M2
    return observed


def score(welfare: WelfareIndicators, rules: RuleSet) -> tuple[float, list[ScoreContribution]]:
    """Points of the observed deprivations over the points of all observed criteria, 0-100.

    Criteria not observed neither count for nor against the family.
    """
    observed = observations(welfare)
    explanation, earned, possible = [], 0.0, 0.0
    for indicator, weight in rules.weights.items():
        value = observed.get(indicator)
        points = weight if value is True else 0.0
        if value is not None:
            possible += weight
            earned += points
        explanation.append(contribution(indicator, type(value), value, points))
    return (round(100 * earned / possible, 2) if possible else 0.0), explanation


@lru_cache(maxsize=4096)
def contribution(indicator: str, kind: type, observed: bool | float | int | None, points: float) -> ScoreContribution:
    """One explanation row, shared by every household that has it (rows are immutable).

    A rule set yields only a few distinct rows, and validating 14 new rows per household cost
    more than the rest of its assessment. `kind` keeps True and 1 apart, which hash alike.
    """
    return ScoreContribution(indicator=indicator, observed=observed, points=points)


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def member_components(member: Member, today: date, rules: RuleSet) -> list[str]:
    age = age_on(member.birth_date, today)
    found = []
    if member.pregnant:
        found.append("pregnant")
    if age <= 6:
        found.append("early_childhood")
    elif member.in_school and age <= 21:
        found.append("school_sd" if age <= 12 else "school_smp" if age <= 15 else "school_sma")
    if member.disability:
        found.append("severe_disability")
    if age >= rules.elderly_from_age:
        found.append("elderly")
    return found


def counts(members: list[Member], today: date, rules: RuleSet) -> dict[str, int]:
    """The MemberCounts of a household; 15-year-old pupils are finishing SMP, so enter SMA next."""
    ages = [(m, age_on(m.birth_date, today)) for m in members]
    return {
        "pregnant": sum(m.pregnant for m, _ in ages),
        "toddlers": sum(a <= 6 for _, a in ages),
        "school_children": sum(m.in_school and 7 <= a <= 21 for m, a in ages),
        "children_entering_sma": sum(m.in_school and a == 15 for m, a in ages),
        "elderly": sum(a >= rules.elderly_from_age for _, a in ages),
        "disabled": sum(m.disability for m, _ in ages),
    }


def assess(household: HouseholdRegisteredData, rules: RuleSet, today: date) -> EligibilityAssessedData:
    deprivation, explanation = score(household.welfare, rules)
    found = [c for m in household.members for c in member_components(m, today, rules)]
    components = sorted(found, key=rules.component_order.index)[: rules.max_components]
    return EligibilityAssessedData.model_validate({
        "household_id": household.household_id,
        "programme": household.programme,
        "region_code": household.region_code,
        "rule_set": rules.id,
        "score": deprivation,
        "eligible": deprivation >= rules.eligible_from and bool(components),
        "components": components,
        "member_counts": counts(household.members, today, rules),
        "explanation": explanation,
    })
