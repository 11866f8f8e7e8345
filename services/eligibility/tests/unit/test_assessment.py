"""The assessment of one household: explained, deterministic, with its benefits, graduation and review day."""

from datetime import date, timedelta
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from ejsika_eligibility.domain.assessment import (
    AssessmentInputs,
    Context,
    age_on,
    assess,
    birthday,
    next_review,
)
from ejsika_eligibility.domain.rules import INDICATORS, defaults, load

RULES = {r.programme: r for r in defaults()}["jamsosratu"]
TODAY = date(2026, 11, 28)
BOOLEAN = [name for name, numeric in INDICATORS.items() if not numeric]
HOUSEHOLD = UUID("00000000-0000-0000-0000-000000000001")


def member(born: str, **flags) -> dict:
    return {"member_id": str(uuid4()), "sex": flags.pop("sex", "F"), "birth_date": born, "relation": "child", **flags}


def household(welfare: dict, members: list[dict], **extra) -> AssessmentInputs:
    return AssessmentInputs.model_validate({"household_id": HOUSEHOLD, "programme": "jamsosratu",
                                            "region_code": "3601011001", "welfare": welfare, "members": members,
                                            **extra})


HEAD = member("1980-03-12", sex="M")
POOR = {**{name: True for name in BOOLEAN}, "floor_area_per_person_m2": 5.0, "installed_power_va": 450}
PROSPEROUS = {**{name: False for name in BOOLEAN}, "floor_area_per_person_m2": 30.0, "installed_power_va": 2200}

welfare_values = st.fixed_dictionaries({
    **{name: st.one_of(st.none(), st.booleans()) for name in BOOLEAN},
    "floor_area_per_person_m2": st.one_of(st.none(), st.floats(0, 60, allow_nan=False)),
    "installed_power_va": st.one_of(st.none(), st.sampled_from([0, 450, 451, 900, 901, 1300, 2200])),
})


@settings(max_examples=300, deadline=None)
@given(welfare_values)
def test_the_explanation_adds_up_to_the_score_exactly(welfare):
    decision = assess(household(welfare, [HEAD]), RULES, TODAY)
    assert sum(c.points for c in decision.explanation) == decision.score
    assert [c.indicator for c in decision.explanation] == list(RULES.indicators)
    assert set(decision.missing) == {c.indicator for c in decision.explanation if c.observed is None}
    assert 0 <= decision.score <= 100


def test_observations_alike_in_value_but_not_in_kind_are_explained_apart_whatever_came_before():
    # True, 1 and 1.0 hash alike: the explanation rows kept per rule set must not mix them up
    first = assess(household({**POOR, "no_electricity": True}, [HEAD]), RULES, TODAY)
    number = assess(household({**POOR, "no_electricity": 1}, [HEAD]), RULES, TODAY)
    again = assess(household({**POOR, "no_electricity": True}, [HEAD]), RULES, TODAY)
    row = {c.indicator: c for c in first.explanation}["no_electricity"]
    assert row.observed is True and row.points == RULES.indicators["no_electricity"].weight
    row = {c.indicator: c for c in number.explanation}["no_electricity"]
    assert row.observed == 1.0 and type(row.observed) is float and row.points == 0
    assert again == first and number.fingerprint != first.fingerprint
    power = [assess(household({**POOR, "installed_power_va": v}, [HEAD]), RULES, TODAY) for v in (450, 450.0)]
    assert power[0].explanation == power[1].explanation and power[0].fingerprint == power[1].fingerprint


def test_the_poorest_household_scores_100_and_one_with_no_deprivation_0():
    assert assess(household(POOR, [HEAD]), RULES, TODAY).score == 100
    assert assess(household(PROSPEROUS, [HEAD]), RULES, TODAY).score == 0


def test_a_single_recorded_deprivation_is_insufficient_data_listing_what_is_missing():
    decision = assess(household({"no_electricity": True}, [HEAD, member("2020-01-01")]), RULES, TODAY)
    assert decision.status == "insufficient_data" and decision.desil is None
    assert decision.score == 6
    assert len(decision.missing) == len(RULES.indicators) - 1 and "no_electricity" not in decision.missing
    assert not decision.eligible


def test_the_same_inputs_and_version_give_the_same_decision_and_fingerprint():
    inputs = household(POOR, [HEAD, member("2012-05-01", in_school=True)])
    first, again = assess(inputs, RULES, TODAY), assess(inputs.model_copy(deep=True), RULES, TODAY)
    assert first == again
    other_day = assess(inputs, RULES, date(2026, 4, 30))  # the pupil is 13 then, 14 now: another input
    assert other_day.fingerprint != first.fingerprint
    assert assess(household({**POOR, "installed_power_va": 450.0}, [HEAD, inputs.members[1].model_dump()]),
                  RULES, TODAY).fingerprint == first.fingerprint


def test_desil_follows_the_cuts_and_entry_needs_a_component():
    # 100 points: desil 1; eligible with a pupil, not without any component
    assert assess(household(POOR, [HEAD, member("2015-01-01", in_school=True)]), RULES, TODAY).status == "eligible"
    no_component = assess(household(POOR, [HEAD]), RULES, TODAY)
    assert no_component.desil == 1 and no_component.status == "not_eligible"
    # 46 points (7 boolean deprivations of 7 and 6, nothing else): cuts 50 > 46 >= 40 give desil 5
    welfare = {**PROSPEROUS, "earth_or_bamboo_floor": True, "no_private_toilet": True, "unprotected_water": True,
               "protein_at_most_weekly": True, "at_most_two_meals_a_day": True, "cannot_pay_clinic": True,
               "no_electricity": True}
    decision = assess(household(welfare, [HEAD, member("2015-01-01", in_school=True)]), RULES, TODAY)
    assert decision.score == 48 and decision.desil == 5 and decision.status == "not_eligible"


def test_entry_holds_at_the_entry_desils_cut_exactly_and_not_a_point_below():
    # 48 points (as above); the fourth cut (the last desil that enters) set at 48, then at 49
    welfare = {**PROSPEROUS, "earth_or_bamboo_floor": True, "no_private_toilet": True, "unprotected_water": True,
               "protein_at_most_weekly": True, "at_most_two_meals_a_day": True, "cannot_pay_clinic": True,
               "no_electricity": True}
    inputs = household(welfare, [HEAD, member("2015-01-01", in_school=True)])

    def with_fourth_cut(cut: float):
        cuts = [80, 70, 60, cut, 40, 32, 25, 18, 10]
        return load({**RULES.document(), "desil": cuts})

    at_cut, below_cut = assess(inputs, with_fourth_cut(48), TODAY), assess(inputs, with_fourth_cut(49), TODAY)
    assert RULES.entry.max_desil == 4
    assert (at_cut.score, at_cut.desil, at_cut.status) == (48, 4, "eligible")
    assert (below_cut.desil, below_cut.status) == (5, "not_eligible")


def test_components_by_age_on_the_day_in_the_files_order_at_most_four_with_their_amounts():
    members = [member("1950-01-01"),  # elderly
               member("2024-01-01"),  # early childhood
               member("2016-01-01", in_school=True),  # 10: SD
               member("2012-11-28", in_school=True),  # 14 today (birthday): SMP
               member("2009-11-29", in_school=True),  # 16 (17 tomorrow): SMA
               member("1990-01-01", pregnant=True)]
    decision = assess(household(POOR, [HEAD, *members]), RULES, TODAY)
    assert decision.components == ["pregnant", "early_childhood", "elderly", "school_sma"]
    assert decision.yearly_amount == 3_000_000 + 3_000_000 + 2_400_000 + 2_000_000
    assert [b.member_id for b in decision.benefits] == [UUID(members[5]["member_id"]), UUID(members[1]["member_id"]),
                                                        UUID(members[0]["member_id"]), UUID(members[4]["member_id"])]


def test_age_bounds_include_both_ends():
    def components(born: str) -> list[str]:
        return assess(household(POOR, [HEAD, member(born, in_school=True)]), RULES, TODAY).components

    assert components("2019-11-28") == ["school_sd"]  # 7 today
    assert components("2019-11-29") == ["early_childhood"]  # 6 until tomorrow
    assert components("2005-11-28") == ["school_sma"]  # 21 today: still within 16-21
    assert components("2004-11-28") == []  # 22 today


def test_a_member_may_earn_several_components_and_members_without_an_id_still_count():
    elderly_disabled = {"sex": "F", "birth_date": "1940-02-29", "relation": "parent", "disability": True}
    decision = assess(household(POOR, [HEAD, elderly_disabled]), RULES, TODAY)
    assert decision.components == ["severe_disability", "elderly"]
    assert all(b.member_id is None for b in decision.benefits)


def test_mandiri_needs_the_graduation_desil_in_consecutive_assessments():
    inputs = household(PROSPEROUS, [HEAD, member("2015-01-01", in_school=True)])
    assert assess(inputs, RULES, TODAY, Context(prior_high=1, active=True)).graduation is None
    decision = assess(inputs, RULES, TODAY, Context(prior_high=2, active=True))
    assert decision.desil == 10 and decision.graduation == "mandiri"
    assert decision.proposed_exit["kind"] == "mandiri"
    poor = assess(household(POOR, [HEAD, member("2015-01-01", in_school=True)]), RULES, TODAY, Context(5, True))
    assert poor.graduation is None and poor.proposed_exit is None


def test_alamiah_when_an_active_family_has_no_component_left():
    decision = assess(household(POOR, [HEAD]), RULES, TODAY, Context(active=True))
    assert decision.graduation == "alamiah" and decision.proposed_exit["kind"] == "alamiah"
    candidate = assess(household(POOR, [HEAD]), RULES, TODAY, Context(active=False))
    assert candidate.graduation is None and candidate.proposed_exit is None


def test_an_escalation_proposes_a_paksa_exit_for_an_active_family():
    escalation = {"kind": "forced_exit", "period": "2026-10-31", "reason": "school attendance unmet 3 periods",
                  "member_id": str(uuid4()), "commitment": "school_attendance"}
    inputs = household(POOR, [HEAD, member("2015-01-01", in_school=True)], escalation=escalation)
    decision = assess(inputs, RULES, TODAY, Context(active=True))
    assert decision.proposed_exit == {"kind": "paksa", "reason": "school attendance unmet 3 periods"}
    assert decision.status == "eligible"
    assert decision.fingerprint != assess(household(POOR, [HEAD, inputs.members[1].model_dump()]), RULES, TODAY,
                                          Context(active=True)).fingerprint


def test_the_event_carries_the_decision_without_personal_data():
    data = assess(household(POOR, [HEAD, member("2015-01-01", in_school=True)]), RULES, TODAY).event_data()
    assert data.rule_set == "jamsosratu.v1" and data.rule_version == 1 and data.status == "eligible"
    assert data.eligible and data.components == ["school_sd"] and data.yearly_amount == 900_000
    assert data.benefits[0].component == "school_sd" and data.member_counts.school_children == 1
    assert "name" not in data.model_dump_json() and "birth_date" not in data.model_dump_json()


def test_next_review_is_the_next_age_bound_or_the_recertification():
    assert next_review(household(POOR, [HEAD]), RULES, TODAY) == date(2027, 11, 28)
    # 6 now, 7 on 2027-03-01: leaves early childhood and enters SD that day
    assert next_review(household(POOR, [HEAD, member("2020-03-01")]), RULES, TODAY) == date(2027, 3, 1)
    # a man of 59 turning 60 on 2027-01-15
    assert next_review(household(POOR, [member("1967-01-15", sex="M")]), RULES, TODAY) == date(2027, 1, 15)
    # born 29 February: a year older on 1 March outside leap years
    assert birthday(date(2020, 2, 29), 7) == date(2027, 3, 1) and age_on(date(2020, 2, 29), date(2027, 3, 1)) == 7


def test_on_its_review_day_the_decision_changes():
    inputs = household(POOR, [HEAD, member("2020-03-01", in_school=True)])
    day = next_review(inputs, RULES, TODAY)
    before, after = assess(inputs, RULES, day - timedelta(days=1)), assess(inputs, RULES, day)
    assert before.components == ["early_childhood"] and after.components == ["school_sd"]
