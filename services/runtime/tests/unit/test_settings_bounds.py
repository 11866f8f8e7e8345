"""Settings refuse values outside their bounds, so a service does not start with them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from ejsika_runtime.settings import Settings

REFUSED = [
    ("EJSIKA_CONSUMER_MAX_ATTEMPTS", "0"),  # failing events would be neither applied nor dead-lettered
    ("EJSIKA_CONSUMER_MAX_ATTEMPTS", "-1"),
    ("EJSIKA_CONSUMER_BATCH_SIZE", "0"),
    ("EJSIKA_CONSUMER_CONCURRENCY", "0"),
    ("EJSIKA_CONSUMER_BATCH_TIMEOUT_MS", "0"),
    ("EJSIKA_CONSUMER_RETRY_BACKOFF_S", "-0.5"),
    ("EJSIKA_CONSUMER_PAUSE_MAX_S", "300"),  # paused inside the poll: past max.poll.interval.ms, out of the group
    ("EJSIKA_CONSUMER_SYSTEMIC_RATIO", "1"),  # failures could never exceed it: every event dead-lettered
    ("EJSIKA_CONSUMER_ISOLATION_BUDGET_S", "0"),
    ("EJSIKA_CONSUMER_ISOLATION_BUDGET_S", "300"),
    ("EJSIKA_RELAY_BATCH_SIZE", "0"),
    ("EJSIKA_RELAY_POLL_INTERVAL_S", "0"),
    ("EJSIKA_DB_POOL_SIZE", "1"),
    ("EJSIKA_DB_COMMAND_TIMEOUT_S", "0"),
    ("EJSIKA_DB_KEEPALIVES_IDLE_S", "0"),
    ("EJSIKA_DB_KEEPALIVES_INTERVAL_S", "0"),
    ("EJSIKA_DB_KEEPALIVES_COUNT", "0"),
    ("EJSIKA_DB_IDLE_IN_TRANSACTION_TIMEOUT_S", "-1"),
    ("EJSIKA_HTTP_PORT", "0"),
    ("EJSIKA_HTTP_PORT", "70000"),
]


@pytest.mark.parametrize("name, value", REFUSED)
def test_a_setting_out_of_its_bounds_is_refused_and_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    field = name.removeprefix("EJSIKA_").lower()
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]


def test_the_defaults_and_the_smallest_sensible_values_are_accepted(monkeypatch):
    Settings()
    for name, value in [("EJSIKA_CONSUMER_MAX_ATTEMPTS", "1"), ("EJSIKA_CONSUMER_CONCURRENCY", "1"),
                        ("EJSIKA_CONSUMER_RETRY_BACKOFF_S", "0"), ("EJSIKA_DB_IDLE_IN_TRANSACTION_TIMEOUT_S", "0"),
                        ("EJSIKA_RELAY_POLL_INTERVAL_S", "0.05"), ("EJSIKA_DB_POOL_SIZE", "2")]:
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.consumer_max_attempts == 1 and settings.consumer_concurrency == 1


def test_a_service_does_not_start_with_zero_attempts():
    env = {**os.environ, "EJSIKA_CONSUMER_MAX_ATTEMPTS": "0"}
    started = subprocess.run([sys.executable, "-c", "import ejsika_eligibility.app"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "consumer_max_attempts" in started.stderr
