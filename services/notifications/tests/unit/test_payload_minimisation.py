import uuid

from ejsika_contracts import EligibilityAssessedData
from ejsika_notifications.domain.agencies import EDUCATION_PROFILE, HEALTH_PROFILE, field_paths, minimise
from ejsika_notifications.domain.deliveries import ENVELOPE_FIELDS, plan
from ejsika_notifications.domain.subscriptions import KNOWN_FIELDS, Filter, Subscription


def test_the_education_office_sees_only_its_fields(assessed):
    data = assessed(children_entering_sma=1).data.model_dump(mode="json")
    seen = minimise(data, EDUCATION_PROFILE)
    assert seen == {
        "household_id": data["household_id"],
        "programme": "jamsosratu",
        "region_code": "3672011001",
        "eligible": True,
        "member_counts": {"children_entering_sma": 1, "school_children": 2},
    }


def test_the_health_office_sees_pregnancies_and_toddlers_but_not_schooling(assessed):
    seen = minimise(assessed().data.model_dump(mode="json"), HEALTH_PROFILE)
    assert seen["member_counts"] == {"pregnant": 1, "toddlers": 1}
    assert "score" not in seen and "explanation" not in seen and "components" not in seen


def test_naming_an_object_grants_all_of_it_even_beside_one_of_its_fields(assessed):
    data = assessed().data.model_dump(mode="json")
    assert minimise(data, ["member_counts.toddlers", "member_counts"]) == {"member_counts": data["member_counts"]}
    assert minimise(data, ["member_counts"]) == {"member_counts": data["member_counts"]}


def test_fields_missing_from_the_payload_are_skipped():
    assert minimise({"eligible": False}, ["eligible", "member_counts.toddlers", "score"]) == {"eligible": False}
    assert minimise({"member_counts": None}, ["member_counts.toddlers"]) == {}


def test_an_empty_profile_sees_nothing(assessed):
    assert minimise(assessed().data.model_dump(mode="json"), []) == {}


def test_profiles_name_fields_of_the_contract():
    paths = field_paths(EligibilityAssessedData)
    assert {"household_id", "member_counts", "member_counts.toddlers", "explanation"} <= paths
    assert not any(p.startswith("explanation.") for p in paths), "lists are granted whole or not at all"
    assert EDUCATION_PROFILE <= KNOWN_FIELDS and HEALTH_PROFILE <= KNOWN_FIELDS
    assert not KNOWN_FIELDS & set(ENVELOPE_FIELDS)


def test_each_matching_subscription_gets_its_own_minimised_item(assessed):
    education = Subscription(uuid.uuid4(), "dinas-pendidikan", "eligibility.assessed",
                             Filter("3672", eligible_only=True), EDUCATION_PROFILE)
    health = Subscription(uuid.uuid4(), "dinas-kesehatan", "eligibility.assessed", Filter("36"), HEALTH_PROFILE)
    cilegon, serang_not_eligible = assessed(), assessed(region_code="3604011001", eligible=False)

    planned = plan([cilegon, serang_not_eligible], [education, health])

    assert [(p.subscription_id, p.event_id) for p in planned] == [
        (education.id, cilegon.id), (health.id, cilegon.id), (health.id, serang_not_eligible.id)]
    to_education = planned[0].payload
    assert to_education["event_id"] == str(cilegon.id)
    assert to_education["event_time"] == cilegon.time.isoformat()
    assert set(to_education) == {"event_id", "event_time", "household_id", "programme", "region_code",
                                 "eligible", "member_counts"}
    assert set(planned[1].payload["member_counts"]) == {"pregnant", "toddlers"}
