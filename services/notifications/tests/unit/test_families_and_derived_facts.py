"""The family projection applied event by event, school levels by age, and children entering SMA by date."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from ejsika_contracts import (
    EnrolmentChanged,
    EnrolmentChangedData,
    HouseholdMember,
    HouseholdRegisteredDataV2,
    HouseholdRegisteredV2,
    MemberAdded,
    MemberAddedData,
    MemberEnded,
    MemberEndedData,
    MemberMoved,
    MemberMovedData,
    MemberUpdated,
    MemberUpdatedData,
    WelfareIndicators,
)
from ejsika_notifications import derived
from ejsika_notifications.domain.families import (
    Family,
    FamilyMember,
    age_on,
    apply,
    finishing_smp,
    school_level,
    school_year,
)

HOUSEHOLD = uuid.uuid4()


def member(born: date, in_school: bool = True, relation: str = "child", **changes) -> HouseholdMember:
    return HouseholdMember(**({"member_id": uuid.uuid4(), "nik": "3672010101110001", "name": "Ani", "sex": "F",
                               "birth_date": born, "relation": relation, "in_school": in_school} | changes))


def envelope(household=HOUSEHOLD) -> dict:
    return dict(source="registry", subject=str(household), correlation_id=uuid.uuid4())


def registered(*members: HouseholdMember, household=HOUSEHOLD, version=1) -> HouseholdRegisteredV2:
    return HouseholdRegisteredV2(**envelope(household), data=HouseholdRegisteredDataV2(
        household_id=household, version=version, programme="jamsosratu", region_code="3672011001",
        kk_number="3672010101200001", address="Jl. Mawar 1", members=list(members), welfare=WelfareIndicators()))


def enrolment(status: str, version: int, household=HOUSEHOLD) -> EnrolmentChanged:
    return EnrolmentChanged(**envelope(household), data=EnrolmentChangedData(
        household_id=household, version=version, programme="jamsosratu", region_code="3672021002", status=status,
        previous_status=None, effective_date=date(2026, 8, 1)))


def test_a_family_is_kept_from_its_registration_and_its_changes_in_order():
    head, child = member(date(1980, 1, 1), False, "head", name="Mawardi"), member(date(2011, 3, 1))
    families: dict = {}
    assert apply(families, registered(head, child)) == {HOUSEHOLD}
    kept = families[HOUSEHOLD]
    assert set(kept.members) == {head.member_id, child.member_id} and kept.enrolment_status is None
    newborn = member(date(2026, 10, 1), False, nik_status="pending", nik=None)
    apply(families, MemberAdded(**envelope(), data=MemberAddedData(household_id=HOUSEHOLD, version=2, member=newborn,
                                                                   reason="birth", effective_date=date(2026, 10, 1))))
    apply(families, MemberUpdated(**envelope(), data=MemberUpdatedData(
        household_id=HOUSEHOLD, version=3, member=member(date(2011, 3, 1), False, member_id=child.member_id),
        changed=["in_school"])))
    apply(families, enrolment("active", 4))
    kept = families[HOUSEHOLD]
    assert kept.version == 4 and kept.enrolment_status == "active" and kept.region_code == "3672021002"
    assert kept.members[newborn.member_id].nik is None and not kept.members[child.member_id].in_school
    # an event already applied (a redelivery, a replay) or older changes nothing
    assert apply(families, enrolment("suspended", 4)) == set()
    assert apply(families, MemberEnded(**envelope(), data=MemberEndedData(
        household_id=HOUSEHOLD, version=5, member_id=head.member_id, kind="died", effective_date=date(2026, 11, 1)))) \
        == {HOUSEHOLD}
    assert head.member_id not in families[HOUSEHOLD].members


def test_a_member_who_moves_leaves_one_family_and_joins_the_other():
    other = uuid.uuid4()
    child = member(date(2011, 3, 1))
    families: dict = {}
    apply(families, registered(child))
    apply(families, registered(member(date(1990, 1, 1), False, "head"), household=other))
    moved = member(date(2011, 3, 1), member_id=uuid.uuid4())
    changed = apply(families, MemberMoved(**envelope(other), data=MemberMovedData(
        household_id=other, version=2, from_household_id=HOUSEHOLD, from_version=2,
        previous_member_id=child.member_id, member=moved, effective_date=date(2026, 9, 1))))
    assert changed == {HOUSEHOLD, other}
    assert not families[HOUSEHOLD].members and moved.member_id in families[other].members


def test_changes_to_a_family_never_registered_here_are_passed_over():
    families: dict = {}
    assert apply(families, enrolment("active", 3)) == set() and not families


@pytest.mark.parametrize("born, on, level", [
    (date(2019, 6, 30), date(2026, 7, 1), "sd"),    # 7 on the first day of the school year
    (date(2019, 7, 2), date(2026, 7, 1), None),     # 6 then: not yet at SD
    (date(2013, 7, 1), date(2026, 7, 1), "smp"),    # 13
    (date(2011, 3, 1), date(2027, 6, 30), "smp"),   # 15 on 1 July 2026: grade 9 until June
    (date(2011, 3, 1), date(2027, 7, 1), "sma"),    # 16 on 1 July 2027
    (date(2007, 6, 30), date(2026, 11, 1), None),   # 19 at the start: past SMA age
])
def test_school_level_follows_the_age_at_the_start_of_the_school_year(born, on, level):
    pupil = FamilyMember(uuid.uuid4(), None, "x", born, "F", "child", True)
    assert school_level(pupil, on) == level


def test_out_of_school_children_have_no_level():
    assert school_level(FamilyMember(uuid.uuid4(), None, "x", date(2013, 1, 1), "F", "child", False),
                        date(2026, 9, 1)) is None


def test_school_years_run_from_july():
    assert school_year(date(2026, 6, 30)) == "2025/2026" and school_year(date(2026, 7, 1)) == "2026/2027"


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 5, tzinfo=timezone.utc)  # midday in Jakarta


def family(*members: FamilyMember, status="active") -> Family:
    return Family(HOUSEHOLD, 3, "jamsosratu", "3672011001", status, {m.member_id: m for m in members})


def pupil(born: date, in_school=True) -> FamilyMember:
    return FamilyMember(uuid.uuid4(), "3672010101110001", "Ani", born, "F", "child", in_school)


def test_children_in_the_last_year_of_smp_are_entering_sma_next_school_year():
    grade9, grade8, sma = pupil(date(2011, 3, 1)), pupil(date(2012, 3, 1)), pupil(date(2010, 3, 1))
    (notice,) = derived.entering_sma([family(grade9, grade8, sma)], at(date(2026, 11, 20)))
    assert notice.member_ids == (grade9.member_id,)
    assert notice.facts == {"programme": "jamsosratu", "region_code": "3672011001", "school_year": "2026/2027",
                            "entering_school_year": "2027/2028"}
    # in the next school year it is the younger one's turn
    (later,) = derived.entering_sma([family(grade9, grade8, sma)], at(date(2027, 7, 1)))
    assert later.member_ids == (grade8.member_id,) and later.facts["school_year"] == "2027/2028"


def test_a_child_is_told_of_once_a_school_year_whenever_computed():
    child = pupil(date(2011, 3, 1))
    ids = {n.event_id for day in (date(2026, 7, 1), date(2026, 11, 20), date(2027, 6, 30))
           for n in derived.entering_sma([family(child)], at(day))}
    assert len(ids) == 1, "the same notice id all year: the queue keeps one notification per subscription"


def test_only_active_kpm_in_school_count():
    child = pupil(date(2011, 3, 1))
    assert not derived.entering_sma([family(child, status="candidate")], at(date(2026, 11, 20)))
    assert not derived.entering_sma([family(pupil(date(2011, 3, 1), in_school=False))], at(date(2026, 11, 20)))


def test_the_school_year_boundary_is_taken_in_jakarta():
    child = pupil(date(2011, 3, 1))
    # 30 June 2027, 18:00 UTC is already 1 July 01:00 in Jakarta: a new school year, SMP is over
    assert not derived.entering_sma([family(child)], datetime(2027, 6, 30, 18, tzinfo=timezone.utc))
    assert derived.entering_sma([family(child)], datetime(2027, 6, 30, 16, tzinfo=timezone.utc))


@pytest.mark.parametrize("on", [date(2026, 7, 1), date(2026, 12, 31), date(2027, 2, 28), date(2027, 6, 30)])
def test_the_daily_jobs_birth_window_is_exactly_the_children_finishing_smp(on):
    first, last = derived.birth_window(on)
    for born in (first - timedelta(days=1), first, last, last + timedelta(days=1)):
        assert finishing_smp(pupil(born), on) == (first <= born <= last), born
    assert age_on(last, date(on.year if on.month >= 7 else on.year - 1, 7, 1)) == 15


def insured(cover: str | None) -> FamilyMember:
    return FamilyMember(uuid.uuid4(), "3672014101850001", "Siti", date(1985, 1, 1), "F", "spouse", False, cover)


def test_members_known_to_be_outside_jkn_are_told_of_once_a_year():
    uncovered, pbi, unknown = insured("none"), insured("pbi_jkn"), insured(None)
    (notice,) = derived.without_health_insurance([family(uncovered, pbi, unknown)], at(date(2026, 11, 20)))
    assert notice.member_ids == (uncovered.member_id,), "an unrecorded cover is not a lack of one"
    assert notice.facts == {"programme": "jamsosratu", "region_code": "3672011001", "year": 2026}
    same_year = {n.event_id for day in (date(2026, 1, 1), date(2026, 11, 20), date(2026, 12, 31))
                 for n in derived.without_health_insurance([family(uncovered)], at(day))}
    assert same_year == {notice.event_id}
    (next_year,) = derived.without_health_insurance([family(uncovered)], at(date(2027, 1, 1)))
    assert next_year.event_id != notice.event_id, "still uncovered next year: told again, for the next PBI quota"
    assert not derived.without_health_insurance([family(uncovered, status="candidate")], at(date(2026, 11, 20)))


def test_the_cover_follows_the_registrys_member_events():
    head = member(date(1980, 1, 1), in_school=False, relation="head", health_insurance="none")
    families = {}
    apply(families, registered(head))
    assert families[HOUSEHOLD].members[head.member_id].health_insurance == "none"
    covered = head.model_copy(update={"health_insurance": "pbi_jkn"})
    apply(families, MemberUpdated(**envelope(), data=MemberUpdatedData(
        household_id=HOUSEHOLD, version=2, member=covered, changed=["health_insurance"])))
    assert families[HOUSEHOLD].members[head.member_id].health_insurance == "pbi_jkn"
