"""The rules a visit uploaded from the app is judged by, and how a batch is read row by row."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from ejsika_monitoring.domain.visits import (
    BEFORE_REGISTRATION, IN_FUTURE, OUT_OF_SCOPE, UNKNOWN, KnownHousehold, VisitPolicy, first_of_each,
    is_before_registration, is_in_future, refusals,
)
from ejsika_monitoring.visits_api import parse_visits

NOW = datetime(2026, 3, 10, 5, 0, tzinfo=timezone.utc)
POLICY = VisitPolicy(clock_skew=timedelta(seconds=300))
REGISTERED = NOW - timedelta(days=30)


def household(covered: bool = True) -> KnownHousehold:
    return KnownHousehold(uuid.uuid4(), REGISTERED, covered)


def test_a_clock_a_little_ahead_is_tolerated_and_a_later_date_is_not():
    assert not is_in_future(NOW + timedelta(seconds=300), NOW, POLICY)
    assert is_in_future(NOW + timedelta(seconds=301), NOW, POLICY)
    assert not is_in_future(NOW - timedelta(days=9), NOW, POLICY)  # days late is normal


def test_the_tolerance_is_the_policys():
    assert is_in_future(NOW + timedelta(seconds=61), NOW, VisitPolicy(clock_skew=timedelta(seconds=60)))


def test_a_future_date_is_judged_by_its_offset_not_its_wall_clock():
    # 11:59 in Jakarta (UTC+7) is 04:59 UTC: before NOW, although its wall clock reads later.
    jakarta = datetime(2026, 3, 10, 11, 59, tzinfo=timezone(timedelta(hours=7)))
    assert not is_in_future(jakarta, NOW, POLICY)


def test_a_visit_before_the_registration_is_refused_beyond_the_tolerance():
    assert is_before_registration(REGISTERED - timedelta(seconds=301), REGISTERED, POLICY)
    assert not is_before_registration(REGISTERED - timedelta(seconds=300), REGISTERED, POLICY)
    assert not is_before_registration(REGISTERED, REGISTERED, POLICY)
    assert refusals(REGISTERED - timedelta(days=1), NOW, household(), POLICY) == (BEFORE_REGISTRATION,)


def test_a_good_visit_breaks_no_rule():
    assert refusals(NOW - timedelta(days=2), NOW, household(), POLICY) == ()


def test_every_broken_rule_is_named():
    assert refusals(NOW + timedelta(hours=1), NOW, None, POLICY) == (IN_FUTURE, UNKNOWN)
    assert refusals(NOW - timedelta(days=1), NOW, None, POLICY) == (UNKNOWN,)


def test_outside_the_scope_the_registration_date_is_not_told():
    assert refusals(REGISTERED - timedelta(days=1), NOW, household(covered=False), POLICY) == (OUT_OF_SCOPE,)


def test_the_same_visit_twice_in_a_batch_is_first_once():
    a, b = uuid.uuid4(), uuid.uuid4()
    assert first_of_each([a, b, a, a, b]) == [True, True, False, False, False]


def visit(**changes) -> dict:
    return {"visit_id": str(uuid.uuid4()), "household_id": str(uuid.uuid4()),
            "captured_at": "2026-03-09T10:15:00+07:00", "observations": {}, **changes}


def test_each_row_of_a_batch_is_read_on_its_own():
    good, naive, no_id = visit(), visit(captured_at="2026-03-09T10:15:00"), visit(visit_id="not-a-uuid")
    rows = parse_visits([good, naive, no_id, "not even an object"])
    assert rows[0].visit is not None and str(rows[0].visit.visit_id) == good["visit_id"]
    assert rows[1].visit is None and str(rows[1].visit_id) == naive["visit_id"]
    assert [(e.field, e.rule) for e in rows[1].errors] == [("captured_at", "timezone_aware")]
    assert rows[2].visit is None and rows[2].visit_id is None and str(rows[2].household_id) == no_id["household_id"]
    assert rows[3].visit is None and rows[3].errors


def test_a_broken_row_never_echoes_its_values():
    secret = "Ibu hamil, HIV positif"
    notes = visit(notes=secret * 200)  # beyond 2,000 characters
    school = visit(observations={"school": [{"member_id": str(uuid.uuid4()), "enrolled": True,
                                             "days_present": 30, "school_days": 20}]})
    rows = parse_visits([notes, school])
    assert [(e.field, e.rule) for e in rows[0].errors] == [("notes", "string_too_long")]
    assert rows[1].errors and rows[1].errors[0].field.startswith("observations.school[0]")
    assert secret not in repr(rows)


def test_an_unknown_field_is_invalid_and_not_named():
    (row,) = parse_visits([visit(nik="3601011203800001")])
    assert row.visit is None and [e.rule for e in row.errors] == ["extra_forbidden"]
    assert "nik" not in row.errors[0].field
