"""The programme's calendar: the one place where a moment becomes a date.

Dates that mean something to the programme (ages, due dates, periods) are days in the programme's
time zone, Asia/Jakarta (WIB), never the UTC date of a timestamp: a family registered at 01:30 WIB
on 2 January was registered on 2 January, although it is still 1 January in UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TIME_ZONE = "Asia/Jakarta"

try:
    ZONE: timezone | ZoneInfo = ZoneInfo(TIME_ZONE)
except ZoneInfoNotFoundError:  # a host without a time zone database: WIB is UTC+7, without daylight saving
    ZONE = timezone(timedelta(hours=7), "WIB")

# The same day in SQL, for queries that compare dates on the server (its TimeZone may be any).
SQL_TODAY = f"(now() AT TIME ZONE '{TIME_ZONE}')::date"


def programme_date(moment: datetime) -> date:
    """The programme's date of `moment`; a naive datetime is taken as UTC (events carry UTC)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZONE).date()


def programme_today() -> date:
    """Today in the programme's time zone."""
    return programme_date(_now())


def _now() -> datetime:
    return datetime.now(timezone.utc)
