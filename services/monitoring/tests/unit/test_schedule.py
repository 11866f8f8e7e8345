"""The rules of the visit schedule (domain.schedule): pure, no database."""

from datetime import date, timedelta
from uuid import uuid4

from ejsika_monitoring.domain.programmes import MonitoredProgramme
from ejsika_monitoring.domain.schedule import Due, Schedule, activated, due_id, is_overdue, left, visited

MONTHLY = MonitoredProgramme(code="jscm", visit_interval_days=30, first_visit_within_days=14)
TODAY = date(2026, 6, 1)


def active_since(day: date) -> Schedule:
    return activated(Schedule(uuid4(), active=False), MONTHLY, day, uuid4()).schedule


def test_activation_makes_the_first_visit_due_within_the_programme_days_once():
    household = uuid4()
    cause = uuid4()
    change = activated(Schedule(household, active=False), MONTHLY, date(2026, 11, 1), cause)
    assert change.scheduled == Due(due_id(household, cause), "first_visit", date(2026, 11, 1), date(2026, 11, 15))
    assert change.schedule.active and change.schedule.due == change.scheduled
    again = activated(change.schedule, MONTHLY, date(2026, 11, 3), uuid4())
    assert again.scheduled is None and again.schedule.due == change.scheduled, "nothing twice if something is due"
    assert due_id(household, cause) == change.scheduled.visit_id != due_id(uuid4(), cause)


def test_a_suspension_cancels_what_is_due_and_ends_the_overdue_state():
    schedule = active_since(date(2026, 1, 1))
    overdue = Schedule(schedule.household_id, True, 30, schedule.due, overdue_since=schedule.due.due_date)
    change = left(overdue)
    assert change.cancelled == schedule.due and change.overdue_ended
    assert change.schedule.due is None and change.schedule.overdue_since is None and not change.schedule.active
    assert not left(schedule).overdue_ended


def test_a_visit_closes_what_is_due_and_the_next_is_due_an_interval_after_it():
    schedule = active_since(date(2026, 5, 1))  # first visit due 15 May
    change = visited(schedule, date(2026, 5, 10), TODAY, uuid4())
    assert change.closed == schedule.due
    assert change.scheduled.due_date == date(2026, 6, 9) and change.scheduled.opens_on == date(2026, 5, 11)
    assert change.scheduled.kind == "monthly_session" and change.schedule.last_visit_on == date(2026, 5, 10)


def test_a_visit_within_the_next_period_closes_it_early_but_one_before_it_closes_nothing():
    schedule = active_since(date(2026, 5, 1))
    after_first = visited(schedule, date(2026, 5, 10), TODAY, uuid4()).schedule  # next due 9 June, opens 11 May
    early = visited(after_first, date(2026, 5, 20), TODAY, uuid4())
    assert early.closed == after_first.due and early.scheduled.due_date == date(2026, 6, 19)
    same_day = visited(after_first, date(2026, 5, 10), TODAY, uuid4())
    assert same_day.closed is None and same_day.scheduled is None and same_day.schedule.due == after_first.due


def test_late_and_out_of_order_visits_never_move_the_schedule_back():
    schedule = active_since(date(2026, 5, 1))
    latest = visited(schedule, date(2026, 5, 20), TODAY, uuid4()).schedule  # next due 19 June
    late = visited(latest, date(2026, 5, 5), TODAY, uuid4())  # uploaded days later, captured before
    assert late.closed is None and late.scheduled is None
    assert late.schedule.due == latest.due and late.schedule.last_visit_on == date(2026, 5, 20)
    # whatever the order of arrival, the schedule ends where the latest visit puts it
    days = [date(2026, 5, 3), date(2026, 5, 20), date(2026, 5, 12)]
    for order in ([0, 1, 2], [1, 0, 2], [2, 1, 0], [1, 2, 0]):
        s = schedule
        for i in order:
            s = visited(s, days[i], TODAY, uuid4()).schedule
        assert s.due.due_date == date(2026, 6, 19) and s.last_visit_on == date(2026, 5, 20), order


def test_a_visit_ends_the_overdue_state_only_when_it_brings_the_family_up_to_date():
    schedule = active_since(date(2026, 3, 1))  # due 15 March, overdue on 1 June
    overdue = Schedule(schedule.household_id, True, 30, schedule.due, overdue_since=date(2026, 3, 15))
    current = visited(overdue, date(2026, 5, 30), TODAY, uuid4())
    assert current.overdue_ended and current.schedule.overdue_since is None
    stale = visited(overdue, date(2026, 3, 20), TODAY, uuid4())  # closes March's, but April's has passed too
    assert stale.closed == schedule.due and not stale.overdue_ended
    assert stale.schedule.overdue_since == date(2026, 3, 15) and stale.schedule.due.due_date == date(2026, 4, 19)


def test_a_family_no_longer_active_gets_its_due_visit_closed_and_nothing_new():
    schedule = active_since(date(2026, 5, 1))
    inactive = Schedule(schedule.household_id, False, 30, schedule.due)
    change = visited(inactive, date(2026, 5, 10), TODAY, uuid4())
    assert change.closed == schedule.due and change.scheduled is None and change.schedule.due is None


def test_only_open_visits_past_their_due_date_are_overdue():
    assert is_overdue(date(2026, 11, 1), done=False, today=date(2026, 11, 2))
    assert not is_overdue(date(2026, 11, 1), done=True, today=date(2026, 11, 2))
    assert not is_overdue(date(2026, 11, 2), done=False, today=date(2026, 11, 2))


def test_the_interval_is_the_programme_s_and_the_shortest_of_two():
    fortnightly = MonitoredProgramme(code="pilot", visit_interval_days=14, first_visit_within_days=7)
    schedule = activated(Schedule(uuid4(), active=False), fortnightly, date(2026, 5, 1), uuid4()).schedule
    assert schedule.due.due_date == date(2026, 5, 8) and schedule.interval_days == 14
    assert activated(schedule, MONTHLY, date(2026, 5, 2), uuid4()).schedule.interval_days == 14
    nxt = visited(schedule, date(2026, 5, 5), TODAY, uuid4()).scheduled
    assert nxt.due_date == date(2026, 5, 5) + timedelta(days=14)
