"""The families as notifications knows them: only what an agency's profile may name (no I/O).

The registry owns households; this service keeps a projection of the few fields that agencies may
receive (who the members are, their birth date, sex, relation and schooling, the village, the
programme and its enrolment status, and their JKN cover for the health office), built from the
registry's events in partition order. Income, welfare indicators, the address, the No. KK and the
other health flags are not kept: no profile can name what is not here, so no agency can ever be
sent it by mistake.

Schooling has no level in the registry's data (only `in_school`): the level is inferred from the
age at the start of the school year, as the national school ages go (SD 7-12, SMP 13-15, SMA 16-18).
A `school_level`/`grade` field on the member would make it exact; the registry's events would
carry it as an optional field and this module would prefer it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal
from uuid import UUID

from ejsika_contracts import (
    EnrolmentChanged,
    Event,
    HeadChanged,
    HouseholdMember,
    HouseholdRegisteredV2,
    HouseholdSplit,
    HouseholdUpdated,
    MemberAdded,
    MemberEnded,
    MemberMoved,
    MemberUpdated,
)

SchoolLevel = Literal["sd", "smp", "sma"]
SCHOOL_LEVELS: tuple[SchoolLevel, ...] = ("sd", "smp", "sma")
# The age on the first day of the school year at which each level is attended.
_LEVEL_AGES: tuple[tuple[SchoolLevel, int, int], ...] = (("sd", 7, 12), ("smp", 13, 15), ("sma", 16, 18))
SMP_FINAL_YEAR_AGE = 15  # grade 9: finishes SMP in June, enters SMA in July
SCHOOL_YEAR_STARTS = (7, 1)  # 1 July


@dataclass(frozen=True)
class FamilyMember:
    member_id: UUID
    nik: str | None
    name: str
    birth_date: date
    sex: str
    relation: str
    in_school: bool
    health_insurance: str | None = None  # pbi_jkn, jkn_contributory, none; None while not recorded


@dataclass(frozen=True)
class Family:
    household_id: UUID
    version: int
    programme: str
    region_code: str
    enrolment_status: str | None = None
    members: dict[UUID, FamilyMember] = field(default_factory=dict)


def member_of(member: HouseholdMember) -> FamilyMember:
    return FamilyMember(member.member_id, member.nik, member.name, member.birth_date, member.sex, member.relation,
                        member.in_school, member.health_insurance)


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def school_year_start(day: date) -> date:
    """The first day of the school year `day` belongs to (school years run July to June)."""
    start = date(day.year, *SCHOOL_YEAR_STARTS)
    return start if day >= start else date(day.year - 1, *SCHOOL_YEAR_STARTS)


def school_year(day: date) -> str:
    """The school year of `day` as written in Indonesia: "2026/2027"."""
    start = school_year_start(day).year
    return f"{start}/{start + 1}"


def school_level(member: FamilyMember, day: date) -> SchoolLevel | None:
    """The level a pupil attends in the school year of `day`, by age; None out of school."""
    if not member.in_school:
        return None
    age = age_on(member.birth_date, school_year_start(day))
    return next((level for level, low, high in _LEVEL_AGES if low <= age <= high), None)


def outside_jkn(member: FamilyMember) -> bool:
    """Known to have no JKN cover (neither PBI-JKN nor paid contributions); unrecorded is not outside."""
    return member.health_insurance == "none"


def finishing_smp(member: FamilyMember, day: date) -> bool:
    """In the last year of SMP in the school year of `day`: enters SMA in the next one."""
    return member.in_school and age_on(member.birth_date, school_year_start(day)) == SMP_FINAL_YEAR_AGE


# ---- the projection: each registry event applied to the family it names ------------------------

# The events that change what is kept here.
FAMILY_EVENTS = (HouseholdRegisteredV2, HouseholdUpdated, MemberAdded, MemberUpdated, MemberEnded, MemberMoved,
                 HeadChanged, HouseholdSplit, EnrolmentChanged)


def households_of(events: Iterable[Event]) -> set[UUID]:
    """Every family a batch of registry events touches (a move touches the one left too)."""
    touched: set[UUID] = set()
    for event in events:
        if isinstance(event, FAMILY_EVENTS):
            touched.add(event.data.household_id)
            if isinstance(event, MemberMoved):
                touched.add(event.data.from_household_id)
    return touched


def apply(families: dict[UUID, Family], event: Event) -> set[UUID]:
    """Apply one registry event to `families` (changed in place); returns the families it changed.

    The order guard: a family's `version` grows with every change the registry makes, so an event
    whose version is not newer than the one kept is already applied (or older) and is passed over.
    """
    data = event.data
    if isinstance(event, HouseholdRegisteredV2):
        kept = families.get(data.household_id)
        if kept is not None and kept.version >= data.version:
            return set()
        families[data.household_id] = Family(
            data.household_id, data.version, data.programme, data.region_code,
            kept.enrolment_status if kept else None, {m.member_id: member_of(m) for m in data.members})
        return {data.household_id}
    if isinstance(event, MemberMoved):
        changed = set()
        left = families.get(data.from_household_id)
        if left is not None and left.version < data.from_version:
            families[left.household_id] = replace(
                left, version=data.from_version,
                members={k: v for k, v in left.members.items() if k != data.previous_member_id})
            changed.add(left.household_id)
        return changed | _change(families, data.household_id, data.version,
                                 lambda f: replace(f, members={**f.members, data.member.member_id: member_of(data.member)}))
    if isinstance(event, EnrolmentChanged):
        return _change(families, data.household_id, data.version, lambda f: replace(
            f, programme=data.programme, region_code=data.region_code, enrolment_status=data.status))
    if isinstance(event, HouseholdUpdated):
        if "region_code" not in data.changed or data.region_code is None:
            return _change(families, data.household_id, data.version, lambda f: f)
        return _change(families, data.household_id, data.version, lambda f: replace(f, region_code=data.region_code))
    if isinstance(event, (MemberAdded, MemberUpdated)):
        return _change(families, data.household_id, data.version,
                       lambda f: replace(f, members={**f.members, data.member.member_id: member_of(data.member)}))
    if isinstance(event, MemberEnded):
        return _change(families, data.household_id, data.version,
                       lambda f: replace(f, members={k: v for k, v in f.members.items() if k != data.member_id}))
    if isinstance(event, HouseholdSplit):
        gone = set(data.member_ids)
        return _change(families, data.household_id, data.version,
                       lambda f: replace(f, members={k: v for k, v in f.members.items() if k not in gone}))
    if isinstance(event, HeadChanged):
        relations = {r.member_id: r.relation for r in data.relations}
        return _change(families, data.household_id, data.version, lambda f: replace(f, members={
            k: replace(v, relation=relations.get(k, v.relation)) for k, v in f.members.items()}))
    return set()


def _change(families: dict[UUID, Family], household_id: UUID, version: int, change) -> set[UUID]:
    family = families.get(household_id)
    # A change to a family whose registration is not here (yet) has nothing to build on.
    if family is None or family.version >= version:
        return set()
    families[household_id] = replace(change(family), version=version)
    return {household_id}
