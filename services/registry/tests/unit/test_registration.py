"""Registering a household: each rule names its field and itself; contradictions are flagged, not refused."""

import json
from datetime import date
from uuid import uuid4

import pytest
from hypothesis import given, settings, strategies as st

from ejsika_contracts import HOUSEHOLD, HouseholdRegisteredDataV2
from ejsika_registry.api import Registration
from ejsika_registry.domain.registration import RegistrationRejected, register
from ejsika_runtime.demo.synthetic import Families

TODAY = date(2026, 11, 28)
HEAD = {"nik": "3672011203800001", "name": "A", "sex": "M", "birth_date": "1980-03-12", "relation": "head"}
CHILD = {"nik": "3672015508120002", "name": "B", "sex": "F", "birth_date": "2012-08-15", "relation": "child"}


def household(**changes) -> HouseholdRegisteredDataV2:
    data = {
        "household_id": uuid4(), "programme": "jscm", "region_code": "3672011001", "kk_number": "3672010101200001",
        "address": "Jl. Contoh", "welfare": {}, "members": [HEAD, CHILD],
    }
    data.update(changes)
    data["members"] = [{"member_id": uuid4(), **m} for m in data["members"]]
    return HouseholdRegisteredDataV2.model_validate(data)


def with_member(index: int, **changes) -> HouseholdRegisteredDataV2:
    members = [dict(HEAD), dict(CHILD)]
    members[index].update(changes)
    return household(members=members)


def broken(data: HouseholdRegisteredDataV2) -> set[tuple[str, str]]:
    with pytest.raises(RegistrationRejected) as error:
        register(data, uuid4(), TODAY)
    text = str(error.value) + repr(error.value.violations)
    for value in (data.region_code, data.kk_number, *(m.nik for m in data.members)):
        assert value not in text, "a refusal never echoes a code or a NIK"
    return {(v.field, v.rule) for v in error.value.violations}


def test_a_valid_household_raises_one_registered_event_keyed_by_household():
    data = household()
    correlation = uuid4()
    event = register(data, correlation, TODAY)
    assert event.subject == str(data.household_id) and event.correlation_id == correlation
    assert event.type == "household.registered" and event.source == "registry"
    assert all(m.quality_flags == () for m in event.data.members)
    assert "quality_flags" not in event.to_bytes().decode(), "no flag, no field: the event is as it was"


@pytest.mark.parametrize("change, error", [
    ({"region_code": "3699012001"}, ("region_code", "region_code")),  # kecamatan 99 of Banten: none
    ({"region_code": "3672012001"}, ("region_code", "region_code")),  # Cilegon has kelurahan only
    ({"programme": "jscm", "region_code": "3601012001"}, ("region_code", "programme_region")),
    ({"programme": "pkh", "region_code": "3601012001"}, ("programme", "programme")),
    ({"kk_number": "3672013113200001"}, ("kk_number", "kk_issue_date")),
    ({"kk_number": "3699010101200001"}, ("kk_number", "kk_district")),
])
def test_region_and_kk_rules(change, error):
    assert broken(household(**change)) == {error}


@pytest.mark.parametrize("index, change, error", [
    (0, {"nik": "9972011203800001"}, ("members[0].nik", "nik_district")),
    (1, {"nik": "3672017208120002"}, ("members[1].nik", "nik_birth_date")),  # a woman's 32nd of August
    (1, {"nik": "3672015513120002"}, ("members[1].nik", "nik_birth_date")),  # month 13
    (1, {"birth_date": "2026-11-29"}, ("members[1].birth_date", "birth_date")),  # tomorrow
    (0, {"birth_date": "1899-12-31"}, ("members[0].birth_date", "birth_date")),
    (0, {"pregnant": True}, ("members[0].pregnant", "pregnant_sex")),
    (1, {"relation": "head"}, ("members", "one_head")),
    (1, {"nik": HEAD["nik"]}, ("members[1].nik", "nik_repeated")),
])
def test_member_rules(index, change, error):
    assert error in broken(with_member(index, **change))


def test_every_broken_rule_is_named_at_once():
    data = household(region_code="3699012001", kk_number="3672013113200001",
                     members=[{**HEAD, "nik": "9972011203800001", "relation": "spouse", "pregnant": True}, CHILD])
    assert broken(data) == {("region_code", "region_code"), ("kk_number", "kk_issue_date"),
                            ("members", "one_head"), ("members[0].nik", "nik_district"),
                            ("members[0].pregnant", "pregnant_sex")}


def test_a_nik_that_contradicts_the_declared_birth_date_or_sex_is_accepted_and_flagged():
    data = household(members=[{**HEAD, "birth_date": "1980-03-13"}, {**CHILD, "sex": "M"}])
    event = register(data, uuid4(), TODAY)
    assert [m.quality_flags for m in event.data.members] == [("nik_birth_date_mismatch",), ("nik_sex_mismatch",)]
    read = HOUSEHOLD.parse(event.to_bytes())  # as a consumer reads it
    assert [m.quality_flags for m in read.data.members] == [("nik_birth_date_mismatch",), ("nik_sex_mismatch",)]
    assert json.loads(event.to_bytes())["data"]["members"][0]["quality_flags"] == ["nik_birth_date_mismatch"]


def test_a_hundred_year_old_is_registered_as_declared():
    elder = {"nik": "3672011203260003", "name": "C", "sex": "M", "birth_date": "1926-03-12", "relation": "parent"}
    event = register(household(members=[HEAD, CHILD, elder]), uuid4(), TODAY)
    assert event.data.members[2].quality_flags == ()
    assert event.data.members[2].birth_date == date(1926, 3, 12)


def test_a_nik_first_registered_in_another_province_is_no_problem():
    newcomer = {**HEAD, "nik": "3171011203800001"}  # Jakarta Pusat
    assert register(household(members=[newcomer, CHILD]), uuid4(), TODAY).data.members[0].quality_flags == ()


def test_a_registration_is_the_event_s_data_with_member_ids_of_its_own_and_without_flags_of_the_client():
    body = Families(seed=3, today=TODAY).registration()
    registration = Registration.model_validate(body)
    data = registration.to_data(pendamping_id=None)
    again = registration.to_data(pendamping_id=None)
    assert [m.member_id for m in data.members] == [m.member_id for m in again.members]  # a retry builds the same
    assert len({m.member_id for m in data.members}) == len(data.members)
    assert [m.model_dump(exclude={"member_id"}) for m in data.members] == \
        [m.model_dump(exclude={"member_id"}) for m in registration.members]
    with pytest.raises(ValueError, match="quality_flags"):
        Registration.model_validate({**body, "members": [{**body["members"][0], "quality_flags": ["x"]}]})


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32))
def test_every_synthetic_family_passes_every_rule_unflagged(seed):
    families = Families(seed=seed, today=TODAY)
    for body in families.registrations(5):
        event = register(Registration.model_validate(body).to_data(pendamping_id=None), uuid4(), TODAY)
        assert all(m.quality_flags == () for m in event.data.members)


def test_a_newborn_without_a_nik_is_registered_with_its_status_and_a_verified_member_needs_one():
    newborn = {"name": "Bayi", "sex": "F", "birth_date": "2026-11-01", "relation": "child", "nik_status": "pending"}
    event = register(household(members=[HEAD, newborn]), uuid4(), TODAY)
    assert event.data.members[1].nik is None and event.data.members[1].nik_status == "pending"
    with pytest.raises(ValueError, match="verified"):
        household(members=[HEAD, {**newborn, "nik_status": "verified"}])
    with pytest.raises(ValueError, match="pending"):
        household(members=[HEAD, {**newborn, "nik": CHILD["nik"]}])
    unmatched = register(household(members=[HEAD, {**CHILD, "nik_status": "unmatched"}]), uuid4(), TODAY)
    assert unmatched.data.members[1].nik == CHILD["nik"]
