from datetime import date
from uuid import uuid4

from ejsika_monitoring.domain.schedule import SchedulePolicy, first_visit, is_overdue


def test_first_visit_is_due_within_the_policy_and_has_a_stable_id():
    household = uuid4()
    visit_id, due = first_visit(household, date(2026, 11, 1), SchedulePolicy(first_visit_within_days=14))
    assert due == date(2026, 11, 15)
    assert first_visit(household, date(2026, 11, 1), SchedulePolicy())[0] == visit_id
    assert first_visit(uuid4(), date(2026, 11, 1), SchedulePolicy())[0] != visit_id


def test_only_open_visits_past_their_due_date_are_overdue():
    assert is_overdue(date(2026, 11, 1), done=False, today=date(2026, 11, 2))
    assert not is_overdue(date(2026, 11, 1), done=True, today=date(2026, 11, 2))
    assert not is_overdue(date(2026, 11, 2), done=False, today=date(2026, 11, 2))
