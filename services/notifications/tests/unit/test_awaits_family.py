"""Which notices wait for their family: those a subscription cannot decide on without it."""

import uuid
from datetime import datetime, timezone

from ejsika_notifications.domain.agencies import EDUCATION_PROFILE
from ejsika_notifications.domain.deliveries import Notice, awaits_family
from ejsika_notifications.domain.subscriptions import Filter, Subscription

AT = datetime(2026, 11, 20, 5, tzinfo=timezone.utc)
PUPIL = uuid.uuid4()


def subscribed(event_type="compliance.escalated", active=True, **filter) -> list[Subscription]:
    return [Subscription(uuid.uuid4(), "dinas-pendidikan", event_type, Filter(**filter), EDUCATION_PROFILE, active)]


def escalated() -> Notice:  # carries its programme, not its region
    return Notice(uuid.uuid4(), "compliance.escalated", uuid.uuid4(), AT,
                  {"programme": "jamsosratu", "member": PUPIL, "commitment": "school", "kind": "school_dropout_risk"},
                  (PUPIL,))


def assessed() -> Notice:  # carries its region and programme
    return Notice(uuid.uuid4(), "eligibility.assessed", uuid.uuid4(), AT,
                  {"region_code": "3672011001", "programme": "jscm", "eligible": True})


def test_a_region_filter_waits_for_the_family_of_an_event_without_a_region():
    assert awaits_family(escalated(), subscribed(region_prefix="36"))
    assert not awaits_family(assessed(), subscribed("eligibility.assessed", region_prefix="36")), "its own region"


def test_criteria_the_event_answers_itself_do_not_wait():
    assert not awaits_family(escalated(), subscribed())
    assert not awaits_family(escalated(), subscribed(programmes=("jamsosratu",), escalation_kinds=("school_dropout_risk",)))


def test_enrolment_and_member_criteria_need_the_family():
    assert awaits_family(escalated(), subscribed(enrolment_statuses=("active",)))
    assert awaits_family(escalated(), subscribed(member_age_max=17))
    assert awaits_family(assessed(), subscribed("eligibility.assessed", school_levels=("smp",)))


def test_only_active_subscriptions_to_the_notices_type_count():
    assert not awaits_family(escalated(), subscribed(active=False, region_prefix="36"))
    assert not awaits_family(escalated(), subscribed("visit.recorded", region_prefix="36"))
