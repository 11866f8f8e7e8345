"""Verifikasi komitmen, pure: thresholds, ages at the period's end, the household result, escalation."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from ejsika_contracts import MemberCompliance, Observations
from ejsika_monitoring.domain.compliance import (
    Commitments,
    MemberFacts,
    Period,
    Visit,
    commitments_of,
    escalations,
    household_result,
    last_finished_period,
    period_of,
    run_length,
    verify_household,
)

MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))
CHILD, MOTHER, TODDLER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def child(born: date = date(2015, 1, 1), member_id: uuid.UUID = CHILD) -> MemberFacts:
    return MemberFacts(member_id, born, "F", False)


def visit(day: datetime, **observations) -> Visit:
    return Visit(uuid.uuid4(), day, Observations.model_validate(observations))


def school(present: int, days: int, enrolled: bool = True, member_id: uuid.UUID = CHILD) -> dict:
    return {"member_id": member_id, "enrolled": enrolled, "days_present": present, "school_days": days}


def in_march(day: int = 10) -> datetime:
    return datetime(2026, 3, day, 3, tzinfo=timezone.utc)


def test_periods_are_calendar_months_by_default_and_may_be_longer():
    assert period_of(date(2026, 2, 14)) == Period(date(2026, 2, 1), date(2026, 2, 28))
    assert period_of(date(2026, 5, 2), Commitments(period_months=3)) == Period(date(2026, 4, 1), date(2026, 6, 30))
    assert last_finished_period(date(2026, 1, 1)) == Period(date(2025, 12, 1), date(2025, 12, 31))


def test_attendance_exactly_at_the_threshold_is_compliant_and_just_below_is_not():
    at = verify_household([child()], [visit(in_march(), school=[school(17, 20)])], MARCH)
    below = verify_household([child()], [visit(in_march(), school=[school(16, 20)])], MARCH)
    assert (at.result, at.members[0].attendance_rate) == ("compliant", 0.85)
    assert below.result == "non_compliant"


def test_attendance_sums_the_visits_of_the_period():
    visits = [visit(in_march(5), school=[school(10, 10)]), visit(in_march(25), school=[school(5, 10)])]
    outcome = verify_household([child()], visits, MARCH)
    assert outcome.result == "non_compliant" and outcome.members[0].attendance_rate == 0.75


def test_a_child_not_enrolled_is_non_compliant_whatever_the_attendance():
    outcome = verify_household([child()], [visit(in_march(), school=[school(20, 20, enrolled=False)])], MARCH)
    assert outcome.result == "non_compliant"


def test_a_visit_is_placed_in_its_period_by_its_jakarta_date():
    # 18:00 UTC on 31 March is 01:00 WIB on 1 April: not a visit of March.
    late_evening = datetime(2026, 3, 31, 18, tzinfo=timezone.utc)
    assert verify_household([child()], [visit(late_evening, school=[school(20, 20)])], MARCH).result == "not_verifiable"
    early_morning = datetime(2026, 2, 28, 17, 30, tzinfo=timezone.utc)  # 00:30 WIB on 1 March
    assert verify_household([child()], [visit(early_morning, school=[school(20, 20)])], MARCH).result == "compliant"


def test_ages_count_at_the_period_end():
    turns_seven_on_31_march = child(date(2019, 3, 31))
    turns_seven_on_1_april = child(date(2019, 4, 1))
    assert commitments_of(turns_seven_on_31_march, MARCH) == ["school"]
    assert commitments_of(turns_seven_on_1_april, MARCH) == []  # six: between toddler and school
    assert commitments_of(child(date(2004, 3, 31)), MARCH) == []  # 22 on 31 March
    assert commitments_of(child(date(2004, 4, 1)), MARCH) == ["school"]  # still 21
    assert commitments_of(child(date(2021, 4, 1)), MARCH) == ["toddler"]  # 59 months on 31 March
    assert commitments_of(child(date(2021, 3, 31)), MARCH) == []  # 60 months
    assert commitments_of(child(date(2026, 4, 2)), MARCH) == []  # not born yet


def test_a_pregnant_member_needs_a_check_up_in_the_period():
    mother = MemberFacts(MOTHER, date(1995, 6, 1), "F", True)
    checked = visit(in_march(), antenatal=[{"member_id": MOTHER, "checked": True}])
    missed = visit(in_march(), antenatal=[{"member_id": MOTHER, "checked": False}])
    assert verify_household([mother], [checked, missed], MARCH).result == "compliant"
    assert verify_household([mother], [missed], MARCH).result == "non_compliant"
    assert verify_household([mother], [], MARCH).result == "not_verifiable"


def test_a_toddler_must_be_weighed_and_immunised():
    toddler = MemberFacts(TODDLER, date(2024, 1, 1), "M", False)

    def check(weighed: bool, immunised: bool) -> dict:
        return {"member_id": TODDLER, "weighed": weighed, "immunised_on_schedule": immunised}

    assert verify_household([toddler], [visit(in_march(), toddlers=[check(True, True)])], MARCH).result == "compliant"
    assert verify_household([toddler], [visit(in_march(), toddlers=[check(True, False)])], MARCH).result == "non_compliant"
    split = [visit(in_march(3), toddlers=[check(True, False)]), visit(in_march(20), toddlers=[check(False, True)])]
    assert verify_household([toddler], split, MARCH).result == "compliant"


def test_household_result_and_households_without_commitments():
    assert household_result(["compliant", "not_verifiable", "non_compliant"]) == "non_compliant"
    assert household_result(["compliant", "not_verifiable"]) == "not_verifiable"
    assert household_result(["compliant", "compliant"]) == "compliant"
    adult = MemberFacts(uuid.uuid4(), date(1980, 1, 1), "M", False)
    assert verify_household([adult], [], MARCH) is None  # nothing to verify: no result
    unknown_members = verify_household(None, [], MARCH)  # registered with v1: no member ids
    assert (unknown_members.result, unknown_members.members) == ("not_verifiable", [])


def _results(*results) -> list[list[MemberCompliance]]:
    return [[MemberCompliance(member_id=CHILD, commitment="school", result=r)] if r else [] for r in results]


def test_escalation_once_per_run_of_three():
    nc = "non_compliant"
    current = _results(nc)[0]
    assert run_length(["compliant", nc, nc]) == 2
    assert [e.kind for e in escalations(current, _results("compliant", nc, nc))] == ["school_dropout_risk"]
    assert escalations(current, _results(nc, nc, nc)) == []  # the 4th period of the run: already raised
    assert escalations(current, _results(None, nc, nc))[0].consecutive_periods == 3  # no result before the run
    assert escalations(current, _results(nc, "compliant", nc)) == []  # broken by a compliant period
    assert escalations(current, _results(nc, nc)) != []  # fewer periods known: a run that starts with them
    assert escalations(current, _results(nc, nc), Commitments(escalate_after_periods=2)) == []


def test_thresholds_are_configuration():
    lenient = Commitments(school_attendance_min=0.5, school_age=(6, 18))
    outcome = verify_household([child(date(2019, 9, 1))], [visit(in_march(), school=[school(12, 20)])], MARCH, lenient)
    assert outcome.result == "compliant"


member_ids = [uuid.UUID(int=i) for i in range(1, 5)]
observation = st.one_of(
    st.builds(lambda m, p, d, e: {"school": [school(min(p, d), d, e, member_ids[m])]},
              st.integers(0, 1), st.integers(0, 20), st.integers(0, 20), st.booleans()),
    st.builds(lambda c: {"antenatal": [{"member_id": member_ids[2], "checked": c}]}, st.booleans()),
    st.builds(lambda w, i: {"toddlers": [{"member_id": member_ids[3], "weighed": w, "immunised_on_schedule": i}]},
              st.booleans(), st.booleans()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 33), observation), max_size=12), st.randoms(use_true_random=False))
def test_the_same_visits_give_the_same_result_whatever_order_they_arrived_in(captured, rng: random.Random):
    household = [MemberFacts(member_ids[0], date(2012, 5, 1), "M", False),
                 MemberFacts(member_ids[1], date(2008, 3, 31), "F", False),
                 MemberFacts(member_ids[2], date(1998, 1, 1), "F", True),
                 MemberFacts(member_ids[3], date(2024, 2, 29), "M", False)]
    visits = [visit(datetime(2026, 3, 1, 8, tzinfo=timezone.utc) + timedelta(days=d), **o) for d, o in captured]
    arrived = visits[:]
    rng.shuffle(arrived)
    in_order = verify_household(household, visits, MARCH)
    assert verify_household(household, arrived, MARCH) == in_order
    assert verify_household(list(reversed(household)), arrived, MARCH) == in_order
