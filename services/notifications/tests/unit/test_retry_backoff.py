import pytest

from ejsika_notifications.domain.retries import gives_up, retry_delay


def test_the_wait_doubles_with_each_failed_attempt():
    waits = [retry_delay(n, base_s=2, cap_s=3600, jitter=1.0) for n in range(1, 6)]
    assert waits == [2, 4, 8, 16, 32]


def test_half_of_the_wait_is_random():
    assert retry_delay(3, base_s=2, cap_s=3600, jitter=0.0) == 4
    assert retry_delay(3, base_s=2, cap_s=3600, jitter=0.5) == 6
    assert 4 <= retry_delay(3, base_s=2, cap_s=3600, jitter=0.999) < 8


def test_the_wait_is_capped_even_after_very_many_attempts():
    assert retry_delay(20, base_s=2, cap_s=3600, jitter=1.0) == 3600
    assert retry_delay(10_000, base_s=2, cap_s=3600, jitter=0.0) == 1800


@pytest.mark.parametrize("attempts, max_attempts, expected", [(1, 3, False), (2, 3, False), (3, 3, True), (4, 3, True)])
def test_delivery_gives_up_after_the_last_attempt(attempts, max_attempts, expected):
    assert gives_up(attempts, max_attempts) is expected
