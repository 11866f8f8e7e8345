from datetime import date
from uuid import uuid4

import pytest

from ejsika_contracts import HouseholdRegisteredData
from ejsika_registry.domain.registration import RegistrationRejected, register
from ejsika_registry.domain.regions import RegionError, check_village_code, programme_for

TODAY = date(2026, 11, 28)


def household(**changes) -> HouseholdRegisteredData:
    data = {
        "household_id": uuid4(), "programme": "jscm", "region_code": "3672011001", "kk_number": "3672010101200001",
        "address": "Jl. Contoh", "welfare": {},
        "members": [
            {"nik": "3672011203800001", "name": "A", "sex": "M", "birth_date": "1980-03-12", "relation": "head"},
            {"nik": "3672015508120002", "name": "B", "sex": "F", "birth_date": "2012-08-15", "relation": "child"},
        ],
    }
    data.update(changes)
    return HouseholdRegisteredData.model_validate(data)


def test_a_valid_household_raises_one_registered_event_keyed_by_household():
    data = household()
    correlation = uuid4()
    event = register(data, correlation, TODAY)
    assert event.subject == str(data.household_id) and event.correlation_id == correlation
    assert event.type == "household.registered" and event.source == "registry"


@pytest.mark.parametrize("change, reason", [
    ({"programme": "jscm", "region_code": "3601011001"}, "does not serve region"),
    ({"region_code": "3672013001"}, "must start with 1"),
    ({"kk_number": "3672013113200001"}, "issue date"),
])
def test_region_and_kk_rules(change, reason):
    with pytest.raises(RegistrationRejected, match=reason):
        register(household(**change), uuid4(), TODAY)


def test_member_data_must_agree_with_the_nik():
    members = household().model_dump()["members"]
    members[1]["sex"] = "M"
    with pytest.raises(RegistrationRejected, match="member 2: sex does not match"):
        register(household(members=members), uuid4(), TODAY)


def test_exactly_one_head_and_no_repeated_nik():
    members = household().model_dump()["members"]
    with pytest.raises(RegistrationRejected, match="exactly one head"):
        register(household(members=[{**members[1], "relation": "child"}]), uuid4(), TODAY)
    with pytest.raises(RegistrationRejected, match="repeated"):
        register(household(members=[members[0], {**members[0], "relation": "spouse"}]), uuid4(), TODAY)


def test_programmes_serve_their_regions():
    assert programme_for("jamsosratu", "3601011001").code == "jamsosratu"
    with pytest.raises(RegionError):
        programme_for("unknown", "3601011001")
    with pytest.raises(RegionError):
        check_village_code("3600011001")
