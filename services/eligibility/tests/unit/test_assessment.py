from datetime import date
from uuid import uuid4

from ejsika_contracts import HouseholdRegisteredData
from ejsika_eligibility.domain.assessment import assess, contribution, score
from ejsika_eligibility.domain.rules import BPS_CRITERIA, STARTER_V1

TODAY = date(2026, 11, 28)


def household(welfare: dict, members: list[dict]) -> HouseholdRegisteredData:
    return HouseholdRegisteredData.model_validate({
        "household_id": uuid4(), "programme": "jamsosratu", "region_code": "3601011001",
        "kk_number": "3601010101200001", "address": "x", "welfare": welfare, "members": members,
    })


HEAD = {"nik": "3601011203800001", "name": "A", "sex": "M", "birth_date": "1980-03-12", "relation": "head"}
PUPIL = {"nik": "3601015508110002", "name": "B", "sex": "F", "birth_date": "2011-08-15", "relation": "child",
         "in_school": True}


def test_score_counts_only_observed_criteria_and_explains_each():
    data = household({"no_electricity": True, "unprotected_water": False}, [HEAD])
    value, explanation = score(data.welfare, STARTER_V1)
    assert value == 50.0
    assert {c.indicator for c in explanation} == set(BPS_CRITERIA)
    assert sum(c.points for c in explanation) == 1.0
    assert {c.indicator: c.observed for c in explanation if c.observed is not None} == {
        "no_electricity": True, "unprotected_water": False}


def test_shared_explanation_rows_keep_true_and_one_apart():
    assert contribution("x", bool, True, 1.0).observed is True
    assert contribution("x", int, 1, 1.0).observed == 1
    assert contribution("x", int, 1, 1.0).observed is not True


def test_poor_family_with_a_component_is_eligible_and_counted_without_personal_data():
    deprived = {name: True for name in [
        "no_electricity", "unprotected_water", "no_private_toilet", "cannot_pay_clinic", "head_low_income",
        "earth_or_bamboo_floor", "at_most_two_meals_a_day", "protein_at_most_weekly", "no_savings_over_500k"]}
    deprived["floor_area_per_person_m2"] = 12.0
    result = assess(household(deprived, [HEAD, PUPIL]), STARTER_V1, TODAY)
    assert result.score == round(100 * 9 / 10, 2)
    assert result.eligible and result.components == ["school_smp"]
    assert result.member_counts.school_children == 1 and result.member_counts.children_entering_sma == 1


def test_poor_family_without_any_component_is_not_eligible():
    result = assess(household({"no_electricity": True}, [HEAD]), STARTER_V1, TODAY)
    assert result.score == 100.0 and result.components == [] and not result.eligible


def test_components_are_capped_per_family():
    kids = [{**PUPIL, "nik": f"360101{55 + i:02d}0821{i:04d}", "birth_date": f"2021-08-{15 + i}", "in_school": False}
            for i in range(6)]
    result = assess(household({"no_electricity": True}, [HEAD, *kids]), STARTER_V1, TODAY)
    assert len(result.components) == STARTER_V1.max_components
