"""Derived facts: what no service says but an agency can act on, computed here from the families.

`children.entering_sma`: a child of an active KPM family in the last year of SMP this school year
(school years start in July) will enter SMA or SMK in the next one, where the education office
reserves places for KPM children. One notice per child and school year, with a stable id, so that
computing it again (every day, and whenever the family changes) never tells an agency twice, and a
subscription made mid-year still hears of every such child at the next daily run.

`families.without_health_insurance`: a member of an active KPM family known to be outside JKN (the
registry's `health_insurance` is `none`), whom the health office can enrol as PBI-JKN. One notice
per member and calendar year (the PBI quota is set yearly): a member still uncovered next year is
told of again; computing it again within the year tells no one twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from uuid import UUID, uuid5

from ejsika_runtime.programme_time import programme_date

from .domain.deliveries import Notice
from .domain.families import (
    SMP_FINAL_YEAR_AGE,
    Family,
    FamilyMember,
    finishing_smp,
    outside_jkn,
    school_year,
    school_year_start,
)
from .domain.subscriptions import CHILDREN_ENTERING_SMA, FAMILIES_WITHOUT_HEALTH_INSURANCE

_NAMESPACE = UUID("0b3e7f0c-6a59-4f5e-9f1e-2c8d7a4b1e60")


def entering_sma(families: Iterable[Family], at: datetime) -> list[Notice]:
    """The notices of the children of active KPM families who finish SMP in the school year of `at`."""
    on = programme_date(at)
    year = school_year(on)
    start = school_year_start(on).year
    return _per_member(families, at, CHILDREN_ENTERING_SMA, year, lambda member: finishing_smp(member, on),
                       {"school_year": year, "entering_school_year": f"{start + 1}/{start + 2}"})


def without_health_insurance(families: Iterable[Family], at: datetime) -> list[Notice]:
    """The notices of the active KPM families with members outside JKN: one per member and year."""
    year = programme_date(at).year
    return _per_member(families, at, FAMILIES_WITHOUT_HEALTH_INSURANCE, year, outside_jkn, {"year": year})


def _per_member(families: Iterable[Family], at: datetime, event_type: str, period: object,
                concerns: Callable[[FamilyMember], bool], facts: dict) -> list[Notice]:
    """One notice per member of an active KPM family that `concerns` picks, its id stable within `period`
    (computing it again in the period tells no one twice)."""
    return [
        Notice(event_id=uuid5(_NAMESPACE, f"{event_type}:{family.household_id}:{member.member_id}:{period}"),
               event_type=event_type, household_id=family.household_id, occurred_at=at,
               facts={"programme": family.programme, "region_code": family.region_code, **facts},
               member_ids=(member.member_id,))
        for family in families if family.enrolment_status == "active"
        for member in family.members.values() if concerns(member)
    ]


def birth_window(on: date) -> tuple[date, date]:
    """The birth dates of pupils in the last year of SMP in the school year of `on` (both included)."""
    start = school_year_start(on)
    first = date(start.year - SMP_FINAL_YEAR_AGE - 1, start.month, start.day + 1)  # 1 July: the 2nd exists
    last = date(start.year - SMP_FINAL_YEAR_AGE, start.month, start.day)
    return first, last
