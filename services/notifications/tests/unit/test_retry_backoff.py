from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from ejsika_notifications.domain.retries import RetrySchedule, Verdict, retry_after_seconds, verdict
from ejsika_notifications.worker import DeliveryPolicy

SCHEDULE = RetrySchedule(base_s=5, factor=3, cap_s=36_000, max_attempts=12, retry_after_cap_s=3600)


@pytest.mark.parametrize("status, expected", [
    (200, Verdict.DELIVERED), (202, Verdict.DELIVERED), (204, Verdict.DELIVERED),
    (400, Verdict.REJECTED), (401, Verdict.REJECTED), (403, Verdict.REJECTED), (404, Verdict.REJECTED),
    (413, Verdict.REJECTED), (422, Verdict.REJECTED),
    (408, Verdict.RETRY), (429, Verdict.RETRY), (500, Verdict.RETRY), (502, Verdict.RETRY), (503, Verdict.RETRY),
    (301, Verdict.RETRY), (None, Verdict.RETRY),
    (410, Verdict.GONE),
])
def test_what_an_answer_means(status, expected):
    assert verdict(status) is expected


def test_the_schedule_grows_by_its_factor_up_to_its_cap():
    assert [SCHEDULE.step(n) for n in range(1, 12)] == [
        5, 15, 45, 135, 405, 1215, 3645, 10935, 32805, 36000, 36000]
    assert SCHEDULE.step(10_000) == 36000, "no overflow however many attempts"


def test_the_default_policy_retries_over_hours():
    schedule = DeliveryPolicy().schedule
    retries = schedule.max_attempts - 1
    longest = sum(schedule.step(n) for n in range(1, retries + 1))
    assert 8 <= schedule.max_attempts <= 12
    assert longest > 24 * 3600, "the last attempt may come a day after the first"
    assert max(schedule.step(n) for n in range(1, retries + 1)) == 10 * 3600


def test_full_jitter_draws_the_whole_wait_between_zero_and_the_step():
    assert SCHEDULE.delay(3, jitter=0.0) == 0
    assert SCHEDULE.delay(3, jitter=0.5) == 22.5
    assert 44 < SCHEDULE.delay(3, jitter=0.999) < 45


def test_a_retry_after_is_honoured_never_retried_sooner_and_capped():
    assert SCHEDULE.delay(1, jitter=0.5, retry_after_s=120) == 120, "later than the schedule: the agency's wish"
    assert SCHEDULE.delay(8, jitter=0.5, retry_after_s=120) == 0.5 * 10935, "sooner than the schedule: the schedule"
    assert SCHEDULE.delay(1, jitter=0.0, retry_after_s=10 * 86400) == 3600, "an agency cannot push it off for days"


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds(" 7 ", now) == 7
    assert retry_after_seconds(format_datetime(now + timedelta(minutes=5), usegmt=True), now) == 300
    assert retry_after_seconds("Tue, 01 Dec 2026 08:10:00 GMT", now) == 600
    assert retry_after_seconds(format_datetime(now - timedelta(minutes=5), usegmt=True), now) == 0, "past: now"


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "Tue, 99 Foo 2026"])
def test_an_absent_or_unreadable_retry_after_is_ignored(header):
    assert retry_after_seconds(header) is None


@pytest.mark.parametrize("attempts, expected", [(1, False), (11, False), (12, True), (13, True)])
def test_a_message_gives_up_after_the_last_attempt(attempts, expected):
    assert SCHEDULE.gives_up(attempts) is expected
