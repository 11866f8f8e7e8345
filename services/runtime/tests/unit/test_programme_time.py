"""Dates of the programme are days in Asia/Jakarta (WIB, UTC+7), whatever the host's or UTC's date."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from ejsika_runtime import programme_time
from ejsika_runtime.programme_time import programme_date, programme_today


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_a_moment_after_17_utc_is_the_next_day_in_jakarta():
    assert programme_date(utc(2026, 1, 1, 18, 30)) == date(2026, 1, 2)  # 01:30 WIB on 2 January
    assert programme_date(utc(2026, 1, 1, 16, 59)) == date(2026, 1, 1)
    assert programme_date(utc(2026, 1, 1, 17, 0)) == date(2026, 1, 2)


def test_any_offset_is_converted_and_a_naive_moment_is_taken_as_utc():
    assert programme_date(datetime(2026, 1, 1, 19, 0, tzinfo=timezone(timedelta(hours=-5)))) == date(2026, 1, 2)
    assert programme_date(datetime(2026, 1, 1, 18, 30)) == date(2026, 1, 2)


def test_today_is_jakartas(monkeypatch):
    monkeypatch.setattr(programme_time, "_now", lambda: utc(2026, 1, 1, 18, 30))
    assert programme_today() == date(2026, 1, 2)


def test_the_sql_expression_names_the_same_zone():
    assert programme_time.SQL_TODAY == "(now() AT TIME ZONE 'Asia/Jakarta')::date"
