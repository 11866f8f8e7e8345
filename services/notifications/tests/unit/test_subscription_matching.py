import uuid

import pytest

from ejsika_notifications.domain.agencies import EDUCATION_PROFILE
from ejsika_notifications.domain.subscriptions import (
    Filter,
    Subscription,
    matches,
    new_secret,
    region_prefix_problem,
    secret_problem,
)

CILEGON = "3672"


def subscription(**changes) -> Subscription:
    base = dict(id=uuid.uuid4(), agency="dinas-pendidikan", event_type="eligibility.assessed",
                filter=Filter(region_prefix=CILEGON), profile=EDUCATION_PROFILE)
    return Subscription(**(base | changes))


def data(region_code="3672011001", eligible=True) -> dict:
    return {"region_code": region_code, "eligible": eligible}


def test_a_family_in_the_region_matches():
    assert matches(subscription(), "eligibility.assessed", data())


def test_a_family_of_another_regency_does_not_match():
    assert not matches(subscription(), "eligibility.assessed", data(region_code="3604011001"))  # Kab. Serang


def test_an_empty_prefix_matches_every_region():
    assert matches(subscription(filter=Filter()), "eligibility.assessed", data(region_code="3101011001"))


def test_eligible_only_leaves_out_ineligible_families():
    only_eligible = subscription(filter=Filter(CILEGON, eligible_only=True))
    assert matches(only_eligible, "eligibility.assessed", data(eligible=True))
    assert not matches(only_eligible, "eligibility.assessed", data(eligible=False))
    assert matches(subscription(), "eligibility.assessed", data(eligible=False))


def test_other_event_types_and_inactive_subscriptions_never_match():
    assert not matches(subscription(), "visit.scheduled", data())
    assert not matches(subscription(active=False), "eligibility.assessed", data())


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
