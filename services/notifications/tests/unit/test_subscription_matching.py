"""Which subscription hears of which notice: each criterion of the filter, and the commitment grants."""

import uuid
from datetime import date, datetime, timezone

import pytest

from ejsika_notifications.domain.agencies import EDUCATION_PROFILE, HEALTH_PROFILE
from ejsika_notifications.domain.deliveries import Notice, plan
from ejsika_notifications.domain.families import Family, FamilyMember
from ejsika_notifications.domain.subscriptions import (
    Filter,
    Subscription,
    filter_problems,
    new_secret,
    region_prefix_problem,
    secret_problem,
)
from ejsika_notifications.pseudonyms import Pseudonyms

CILEGON = "3672"
AT = datetime(2026, 11, 20, 5, tzinfo=timezone.utc)
HOUSEHOLD = uuid.uuid4()
PUPIL, TODDLER = uuid.uuid4(), uuid.uuid4()
FAMILY = Family(HOUSEHOLD, 2, "jamsosratu", "3672011001", "active", {
    PUPIL: FamilyMember(PUPIL, "3672010103110002", "Ani", date(2011, 3, 1), "F", "child", True),
    TODDLER: FamilyMember(TODDLER, None, "Budi", date(2024, 5, 1), "M", "child", False),
})
REFERENCES = Pseudonyms(b"k" * 32)


def subscription(event_type="eligibility.assessed", profile=EDUCATION_PROFILE, **filter) -> Subscription:
    return Subscription(uuid.uuid4(), "dinas-pendidikan", event_type, Filter(**({"region_prefix": CILEGON} | filter)),
                        profile)


def assessed(region_code="3672011001", eligible=True, programme="jamsosratu") -> Notice:
    return Notice(uuid.uuid4(), "eligibility.assessed", HOUSEHOLD, AT,
                  {"region_code": region_code, "eligible": eligible, "programme": programme})


def escalated(kind="school_dropout_risk", commitment="school", member=PUPIL) -> Notice:
    return Notice(uuid.uuid4(), "compliance.escalated", HOUSEHOLD, AT,
                  {"programme": "jamsosratu", "member": member, "commitment": commitment, "kind": kind}, (member,))


def told(subscription: Subscription, notice: Notice, family: Family | None = FAMILY) -> list:
    families = {HOUSEHOLD: family} if family else {}
    return plan([notice], [subscription], families, REFERENCES).deliveries


def test_a_family_in_the_region_matches_and_another_regency_does_not():
    assert told(subscription(), assessed())
    assert not told(subscription(), assessed(region_code="3604011001"))  # Kab. Serang
    assert told(subscription(region_prefix=""), assessed(region_code="3101011001"))


def test_eligible_only_leaves_out_ineligible_families():
    assert told(subscription(eligible_only=True), assessed(eligible=True))
    assert not told(subscription(eligible_only=True), assessed(eligible=False))
    assert told(subscription(), assessed(eligible=False))


def test_other_event_types_and_inactive_subscriptions_never_match():
    assert not told(subscription("visit.recorded"), assessed())
    inactive = Subscription(uuid.uuid4(), "dinas-pendidikan", "eligibility.assessed", Filter(), EDUCATION_PROFILE,
                            active=False)
    assert not told(inactive, assessed())


def test_programme_and_enrolment_status_criteria():
    assert told(subscription(programmes=("jamsosratu",)), assessed())
    assert not told(subscription(programmes=("jscm",)), assessed())
    assert told(subscription(enrolment_statuses=("active",)), assessed())
    assert not told(subscription(enrolment_statuses=("exited",)), assessed())
    assert not told(subscription(enrolment_statuses=("active",)), assessed(), family=None), \
        "a family not known here has no known status: a criterion on it fails"


def test_escalation_kind_criterion():
    assert told(subscription("compliance.escalated", escalation_kinds=("school_dropout_risk",)), escalated())
    assert not told(subscription("compliance.escalated", escalation_kinds=("no_antenatal_care",)), escalated())


def test_an_agency_hears_of_a_commitment_only_if_its_profile_names_it():
    education, health = (subscription("compliance.escalated", profile=p) for p in (EDUCATION_PROFILE, HEALTH_PROFILE))
    toddler = escalated("toddler_not_monitored", "toddler", TODDLER)
    assert told(education, escalated()) and not told(education, toddler)
    assert told(health, toddler) and not told(health, escalated())


@pytest.mark.parametrize("criteria, sent", [
    ({"member_age_min": 12, "member_age_max": 18}, ["Ani"]),
    ({"member_age_max": 5}, ["Budi"]),
    ({"school_levels": ("smp",)}, ["Ani"]),
    ({"school_levels": ("sma",)}, None),
    ({"member_age_min": 30}, None),
])
def test_member_criteria_choose_the_members_sent_and_a_family_without_one_is_not_told(criteria, sent):
    planned = told(subscription(**criteria), assessed())
    if sent is None:
        assert not planned
    else:
        assert [m["name"] for m in planned[0].payload["members"]] == sent


def test_member_criteria_apply_to_the_members_an_event_is_about():
    assert told(subscription("compliance.escalated", school_levels=("smp",)), escalated())
    assert not told(subscription("compliance.escalated", member_age_max=5), escalated())


@pytest.mark.parametrize("event_type, filter, problems", [
    ("eligibility.assessed", Filter(member_age_min=6, member_age_max=6), []),
    ("eligibility.assessed", Filter(member_age_min=7, member_age_max=6), [("filter.member_age", "age_range")]),
    ("eligibility.assessed", Filter(escalation_kinds=("school_dropout_risk",)), [("filter.escalation_kinds", "applies_to")]),
    ("compliance.escalated", Filter(escalation_kinds=("school_dropout_risk",)), []),
    ("visit.recorded", Filter(eligible_only=True), [("filter.eligible_only", "applies_to")]),
    ("visit.recorded", Filter(school_levels=("smp", "smp")), [("filter.school_levels", "unique")]),
    ("visit.recorded", Filter(school_levels=("university",)), [("filter.school_levels", "one_of")]),
    ("visit.recorded", Filter(region_prefix="367"), [("filter.region_prefix", "region_prefix")]),
])
def test_filter_rules_name_the_field_and_the_rule(event_type, filter, problems):
    assert [(f, r) for f, r, _ in filter_problems(event_type, filter)] == problems


@pytest.mark.parametrize("prefix", ["", "36", "3672", "367201", "3672011001"])
def test_region_prefixes_of_each_kemendagri_level_are_accepted(prefix):
    assert region_prefix_problem(prefix) is None


@pytest.mark.parametrize("prefix, reason", [
    ("367", "district (6)"),
    ("36.72", "digits"),
    ("36720110011", "village (10)"),
    ("ab", "digits"),
])
def test_other_region_prefixes_are_refused_with_a_reason(prefix, reason):
    assert reason in region_prefix_problem(prefix)


def test_a_generated_secret_is_a_valid_standard_webhooks_secret():
    secret = new_secret()
    assert secret.startswith("whsec_") and secret_problem(secret) is None
    assert new_secret() != secret


@pytest.mark.parametrize("secret, reason", [
    ("abc", "must start with whsec_"),
    ("whsec_not*base64!", "base64"),
    ("whsec_c2hvcnQ=", "24 to 64"),
])
def test_unusable_secrets_are_refused_without_echoing_them(secret, reason):
    problem = secret_problem(secret)
    assert reason in problem and secret not in problem
