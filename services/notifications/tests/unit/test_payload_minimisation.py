"""No field outside an agency's profile ever leaves: for every profile and every event type.

Each event type is built with every field it can carry filled in (optional ones too, nested lists
with several members), over a family whose members have every field the projection keeps. The
payload planned for each profile is walked to its leaves, and each leaf must be a path the profile
names (or lies under one it names). Hypothesis adds profiles made of any subset of the known
fields, and any filter, so the rule is not only checked for the profiles we ship.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ejsika_contracts import (
    AntenatalCheck,
    Birth,
    ComplianceEscalated,
    ComplianceEscalatedData,
    ComplianceVerified,
    ComplianceVerifiedData,
    EligibilityAssessed,
    EligibilityAssessedData,
    EnrolmentChanged,
    EnrolmentChangedData,
    HouseholdCondition,
    Location,
    MemberCompliance,
    MemberCounts,
    MemberLeft,
    Observations,
    SchoolAttendance,
    ScoreContribution,
    ToddlerCheck,
    VisitRecorded,
    VisitRecordedData,
    WelfareIndicators,
)
from ejsika_contracts.events.eligibility import FunderShare, QuotaAdmitted, QuotaAdmittedData
from ejsika_notifications import derived
from ejsika_notifications.domain.agencies import EDUCATION_PROFILE, HEALTH_PROFILE, grants, minimise
from ejsika_notifications.domain.deliveries import notice_of, plan, shared_fields
from ejsika_notifications.domain.families import Family, FamilyMember
from ejsika_notifications.domain.subscriptions import (
    CHILDREN_ENTERING_SMA,
    EVENT_TYPES,
    INTERNAL_FIELDS,
    KNOWN_FIELDS,
    Filter,
    Subscription,
)
from ejsika_notifications.pseudonyms import Pseudonyms
from ejsika_notifications.ready_made import configurations

AT = datetime(2026, 11, 20, 3, 0, tzinfo=timezone.utc)
HOUSEHOLD = uuid.uuid4()
MOTHER, CHILD, TODDLER, GONE = (uuid.uuid4() for _ in range(4))
REFERENCES = Pseudonyms(b"unit-test-pseudonym-key-0123456789abcdef")
FAMILY = Family(HOUSEHOLD, 7, "jamsosratu", "3672011001", "active", {
    MOTHER: FamilyMember(MOTHER, "3672014101850001", "Siti Aminah", date(1985, 1, 1), "F", "spouse", False, "none"),
    CHILD: FamilyMember(CHILD, "3672010103110002", "Ani", date(2011, 3, 1), "F", "child", True),
    TODDLER: FamilyMember(TODDLER, "3672010105240003", "Budi", date(2024, 5, 1), "M", "child", False),
})


def _envelope(source: str) -> dict[str, Any]:
    return dict(source=source, subject=str(HOUSEHOLD), correlation_id=uuid.uuid4(), time=AT)


def every_event() -> list:
    """One event of each subscribable type, with every field it can carry."""
    full_welfare = WelfareIndicators(**{name: True for name in WelfareIndicators.model_fields
                                        if name not in ("floor_area_per_person_m2", "installed_power_va")},
                                     floor_area_per_person_m2=6.5, installed_power_va=450)
    assessed_fields = EligibilityAssessedData.model_fields
    optional = {  # the optional fields eligibility adds (present in the contract as it is now)
        "rule_version": 2, "status": "eligible", "desil": 2, "missing": ["installed_power_va"],
        "benefits": [{"component": "school_smp", "member_id": CHILD, "amount": 1_500_000}],
        "yearly_amount": 1_500_000, "fingerprint": "f" * 16, "graduation": "mandiri",
        "proposed_exit": {"kind": "mandiri", "reason": "desil above the line"},
    }
    assessed = EligibilityAssessed(**_envelope("eligibility"), data=EligibilityAssessedData.model_validate({
        "household_id": HOUSEHOLD, "programme": "jamsosratu", "region_code": "3672011001", "rule_set": "jamsosratu.v2",
        "score": 71.5, "eligible": True, "components": ["school_smp", "early_childhood"],
        "member_counts": MemberCounts(pregnant=1, toddlers=1, school_children=1, children_entering_sma=1, elderly=0,
                                      disabled=0),
        "explanation": [ScoreContribution(indicator="earth_or_bamboo_floor", observed=True, points=12.0)],
        **{k: v for k, v in optional.items() if k in assessed_fields},
    }))
    quota = QuotaAdmitted(**_envelope("eligibility"), data=QuotaAdmittedData(
        household_id=HOUSEHOLD, programme="jamsosratu", year=2026, region="3672", rank=3, score=71.5, desil=2,
        rule_set="jamsosratu.v2", yearly_amount=1_500_000,
        funders=[FunderShare(funder="apbd-provinsi-banten", share=1.0, amount=1_500_000)]))
    enrolment = EnrolmentChanged(**_envelope("registry"), data=EnrolmentChangedData(
        household_id=HOUSEHOLD, version=8, programme="jamsosratu", region_code="3672011001", status="exited",
        previous_status="active", exit_kind="paksa", reason="non-compliance", effective_date=date(2026, 11, 20)))
    visit = VisitRecorded(**_envelope("monitoring"), data=VisitRecordedData(
        household_id=HOUSEHOLD, visit_id=uuid.uuid4(), pendamping_id="pendamping-demo", captured_at=AT,
        received_at=AT, location=Location(latitude=-6.0, longitude=106.0, accuracy_m=5),
        observations=Observations(
            school=[SchoolAttendance(member_id=CHILD, enrolled=True, days_present=10, school_days=20)],
            antenatal=[AntenatalCheck(member_id=MOTHER, checked=False)],
            toddlers=[ToddlerCheck(member_id=TODDLER, weighed=True, weight_kg=9.5, immunised_on_schedule=False)],
            condition=HouseholdCondition(welfare=full_welfare,
                                         births=[Birth(name="Bayi Siti", sex="F", birth_date=date(2026, 11, 1))],
                                         left=[MemberLeft(member_id=GONE, kind="moved_out", effective_date=date(2026, 11, 2))]))))
    verified = ComplianceVerified(**_envelope("monitoring"), data=ComplianceVerifiedData(
        household_id=HOUSEHOLD, programme="jamsosratu", period_start=date(2026, 10, 1), period_end=date(2026, 10, 31),
        result="non_compliant", revision=2, members=[
            MemberCompliance(member_id=CHILD, commitment="school", result="non_compliant", attendance_rate=0.5),
            MemberCompliance(member_id=MOTHER, commitment="antenatal", result="non_compliant"),
            MemberCompliance(member_id=TODDLER, commitment="toddler", result="compliant")]))
    escalations = [ComplianceEscalated(**_envelope("monitoring"), data=ComplianceEscalatedData(
        household_id=HOUSEHOLD, programme="jamsosratu", member_id=member, commitment=commitment, kind=kind,
        consecutive_periods=3, period_end=date(2026, 10, 31)))
        for member, commitment, kind in ((CHILD, "school", "school_dropout_risk"), (MOTHER, "antenatal", "no_antenatal_care"),
                                         (TODDLER, "toddler", "toddler_not_monitored"))]
    return [assessed, quota, enrolment, visit, verified, *escalations]


def every_notice():
    notices = [notice_of(e) for e in every_event()]
    notices += derived.entering_sma([FAMILY], AT)
    notices += derived.without_health_insurance([FAMILY], AT)
    assert {n.event_type for n in notices} == set(EVENT_TYPES), "a fixture for every subscribable event type"
    return notices


NOTICES = every_notice()
CHOOSING = Filter(member_age_min=0, member_age_max=120)  # sends the members of family-level notices too


def leaves(value: Any, prefix: str = "") -> list[str]:
    """Every leaf path of a payload; a list of objects is walked into (members.nik)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, f"{prefix}{k}.")]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [p for v in value for p in leaves(v, prefix)]
    return [prefix.rstrip(".")]


def planned_payloads(profile, filter: Filter = Filter()) -> list[dict]:
    subscriptions = [Subscription(uuid.uuid4(), "agency-x", t, filter, frozenset(profile)) for t in EVENT_TYPES]
    return [p.payload for p in plan(NOTICES, subscriptions, {HOUSEHOLD: FAMILY}, REFERENCES).deliveries]


def assert_within(profile, payloads) -> None:
    for payload in payloads:
        for path in leaves(payload):
            assert grants(profile, path), f"{path} left without the profile naming it"
        text = repr(payload)
        assert str(HOUSEHOLD) not in text and not any(str(m) in text for m in (MOTHER, CHILD, TODDLER, GONE)), \
            "internal ids never leave"


def shipped_profiles():
    return {"education": EDUCATION_PROFILE, "health": HEALTH_PROFILE,
            **{code: c.agency.profile for code, c in configurations().items()}}


def test_every_shipped_profile_keeps_within_itself_for_every_event_type():
    for name, profile in shipped_profiles().items():
        for filter in (Filter(), CHOOSING):
            payloads = planned_payloads(profile, filter)
            assert payloads, name
            assert_within(profile, payloads)


def test_the_whole_vocabulary_lets_everything_but_internal_ids_through():
    """The check above is not vacuous: with every field granted, every field of every type arrives."""
    payloads = planned_payloads(KNOWN_FIELDS, CHOOSING)
    assert_within(KNOWN_FIELDS, payloads)
    seen = {p for payload in payloads for p in leaves(payload)}
    for expected in ("members.nik", "members.name", "members.school_level", "observations.condition.births",
                     "explanation", "funders", "commitments", "observations.school", "location.latitude",
                     "member_counts.toddlers", "kind", "school_year", "status"):
        assert any(p == expected or p.startswith(expected + ".") for p in seen), expected
    assert not {p.split(".")[0] for p in seen} & INTERNAL_FIELDS


@settings(max_examples=300, deadline=None)
@given(profile=st.sets(st.sampled_from(sorted(KNOWN_FIELDS))),
       ages=st.tuples(st.none() | st.integers(0, 30), st.none() | st.integers(0, 60)),
       levels=st.lists(st.sampled_from(["sd", "smp", "sma"]), unique=True, max_size=3))
def test_any_profile_and_filter_keep_within_the_profile(profile, ages, levels):
    payloads = planned_payloads(profile, Filter(member_age_min=ages[0], member_age_max=ages[1],
                                                school_levels=tuple(levels)))
    assert_within(profile, payloads)


def test_the_education_office_gets_the_child_not_the_mother_and_no_health_data():
    escalations = [n for n in NOTICES if n.event_type == "compliance.escalated"]
    education = Subscription(uuid.uuid4(), "dinas-pendidikan", "compliance.escalated", Filter("36"), EDUCATION_PROFILE)
    (told,) = plan(escalations, [education], {HOUSEHOLD: FAMILY}, REFERENCES).deliveries
    assert told.payload["kind"] == "school_dropout_risk", "antenatal and toddler escalations are health data"
    (child,) = told.payload["members"]
    assert set(child) == {"reference", "nik", "name", "birth_date", "school_level", "in_school"}
    assert (child["nik"], child["name"], child["school_level"]) == ("3672010103110002", "Ani", "smp")
    assert child["reference"] == REFERENCES.member_reference_of("dinas-pendidikan", CHILD)
    assert told.reference == REFERENCES.reference_of("dinas-pendidikan", HOUSEHOLD)
    assert told.payload["region_code"] == "3672011001"


def test_the_health_office_hears_of_mothers_and_toddlers_only():
    verified = [n for n in NOTICES if n.event_type == "compliance.verified"]
    health = Subscription(uuid.uuid4(), "dinas-kesehatan", "compliance.verified", Filter(), HEALTH_PROFILE | {"commitments"})
    (told,) = plan(verified, [health], {HOUSEHOLD: FAMILY}, REFERENCES).deliveries
    assert [c["commitment"] for c in told.payload["commitments"]] == ["antenatal", "toddler"]
    assert {m["name"] for m in told.payload["members"]} == {"Ani", "Siti Aminah", "Budi"}  # the members verified


def test_only_a_profile_naming_the_cover_hears_that_a_family_lacks_one():
    uninsured = [n for n in NOTICES if n.event_type == "families.without_health_insurance"]
    health = Subscription(uuid.uuid4(), "dinas-kesehatan", "families.without_health_insurance", Filter("36"),
                          HEALTH_PROFILE)
    (told,) = plan(uninsured, [health], {HOUSEHOLD: FAMILY}, REFERENCES).deliveries
    (mother,) = told.payload["members"]
    assert (mother["name"], mother["health_insurance"]) == ("Siti Aminah", "none")
    assert told.payload["year"] == AT.year
    # the same fact for a profile without the cover: the event type itself would tell it
    education = Subscription(uuid.uuid4(), "dinas-pendidikan", "families.without_health_insurance", Filter("36"),
                             EDUCATION_PROFILE | {"members.name"})
    assert not plan(uninsured, [education], {HOUSEHOLD: FAMILY}, REFERENCES).deliveries


def test_family_level_notices_send_no_member_unless_the_subscription_chooses_them():
    assessed = [n for n in NOTICES if n.event_type == "eligibility.assessed"]
    plain = Subscription(uuid.uuid4(), "dinas-pendidikan", "eligibility.assessed", Filter(), EDUCATION_PROFILE)
    smp = Subscription(uuid.uuid4(), "dinas-pendidikan", "eligibility.assessed", Filter(school_levels=("smp",)),
                       EDUCATION_PROFILE)
    first, second = plan(assessed, [plain, smp], {HOUSEHOLD: FAMILY}, REFERENCES).deliveries
    assert "members" not in first.payload
    assert [m["name"] for m in second.payload["members"]] == ["Ani"]


def test_the_record_of_processing_names_each_shared_field_once():
    payload = {"region_code": "3672011001", "member_counts": {"toddlers": 1},
               "members": [{"reference": "a", "nik": "1"}, {"reference": "b", "nik": "2", "name": "x"}]}
    assert shared_fields(payload) == ["region_code", "member_counts.toddlers", "members.reference", "members.nik",
                                      "members.name"]


def test_naming_an_object_grants_all_of_it_and_a_list_field_grants_it_in_each_item():
    data = {"member_counts": {"toddlers": 1, "pregnant": 0}, "members": [{"nik": "1", "name": "a"}], "score": 3}
    assert minimise(data, ["member_counts.toddlers", "member_counts"]) == {"member_counts": data["member_counts"]}
    assert minimise(data, ["members.name"]) == {"members": [{"name": "a"}]}
    assert minimise(data, []) == {}
    assert minimise({"member_counts": None}, ["member_counts.toddlers"]) == {}
