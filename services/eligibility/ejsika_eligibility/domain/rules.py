"""Rule sets: the weights and thresholds of an assessment are data, versioned per programme.

`starter-v1` is the first, simple rule set: the BPS poverty criteria with equal weights and the
PKH benefit components. It is a placeholder for the programme's own weights, not a policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RuleSet:
    id: str
    weights: dict[str, float]  # indicator -> points when the deprivation is observed
    eligible_from: float  # deprivation score (0-100) from which a family is eligible
    max_components: int = 4
    elderly_from_age: int = 60
    component_order: tuple[str, ...] = field(default=(
        "pregnant", "early_childhood", "severe_disability", "elderly", "school_sma", "school_smp", "school_sd",
    ))


BPS_CRITERIA = (
    "small_floor_area",
    "earth_or_bamboo_floor",
    "bamboo_or_unplastered_walls",
    "no_private_toilet",
    "no_electricity",
    "unprotected_water",
    "cooks_with_wood_or_kerosene",
    "protein_at_most_weekly",
    "one_set_of_clothes_a_year",
    "at_most_two_meals_a_day",
    "cannot_pay_clinic",
    "head_low_income",
    "head_primary_education_or_less",
    "no_savings_over_500k",
)

# BPS calls a household poor when 9 of the 14 criteria hold: 9/14 of the points.
STARTER_V1 = RuleSet(id="starter-v1", weights={name: 1.0 for name in BPS_CRITERIA}, eligible_from=100 * 9 / 14)

RULE_SETS = {STARTER_V1.id: STARTER_V1}
DEFAULT_RULE_SET = {"jamsosratu": STARTER_V1.id, "jscm": STARTER_V1.id}
