"""The import's quick registration writes what the general one (the model and `register`) writes: the same
event JSON (valid against its frozen schema), the same rows; and it steps aside whenever a rule breaks."""

from __future__ import annotations

import json
from datetime import date
from uuid import UUID, uuid4

import pytest
from jsonschema import Draft202012Validator

from ejsika_contracts import HouseholdRegisteredV2
from ejsika_contracts.schemas import schema_path
from ejsika_registry import import_rows
from ejsika_registry.domain.registration import RegistrationRejected, register
from ejsika_registry.imports import _data, _judged, chunks
from ejsika_registry.register_file import FileHousehold, RowProblem, read_households
from ejsika_registry.registrations import household_id_for
from ejsika_registry.synthetic import generate
from ejsika_runtime.programme_time import programme_today

KEY = b"k" * 40
TODAY = programme_today()
DAY = date(2026, 11, 29)
VALIDATOR = Draft202012Validator(json.loads(schema_path(HouseholdRegisteredV2).read_text()),
                                 format_checker=Draft202012Validator.FORMAT_CHECKER)


def households(**options) -> list[FileHousehold]:
    return [item for item in read_households(generate(400, seed=11, **options), today=TODAY)
            if isinstance(item, FileHousehold)]


def general(item: FileHousehold) -> HouseholdRegisteredV2 | None:
    programme = item.registration["programme"] or "jamsosratu"
    data = _data(item, programme)
    if isinstance(data, RowProblem):
        return None
    try:
        return register(data, uuid4(), TODAY)
    except RegistrationRejected:
        return None


def without_envelope_ids(event: dict) -> dict:
    return {k: v for k, v in event.items() if k not in ("id", "time", "correlation_id")}


def with_office_typos(items: list[FileHousehold]) -> list[FileHousehold]:
    """Every third household with a member whose declared sex or birth day contradicts the NIK (flagged)."""
    typed = []
    for index, item in enumerate(items):
        members = [dict(m) for m in item.registration["members"]]
        if index % 3 == 1 and not members[-1]["pregnant"]:
            members[-1]["sex"] = "F" if members[-1]["sex"] == "M" else "M"
        elif index % 3 == 2:
            born = members[0]["birth_date"]
            members[0]["birth_date"] = born.replace(day=born.day % 28 + 1)
        typed.append(FileHousehold(item.register_id, item.first_row, item.desil,
                                   {**item.registration, "members": members}, item.member_rows))
    return typed


def test_the_quick_event_and_rows_are_the_general_ones_and_match_the_frozen_schema():
    compared = flagged = 0
    for item in with_office_typos(households(bad_rate=0.0, duplicate_rate=0.05)):
        programme = item.registration["programme"] or "jamsosratu"
        quick = import_rows.registration(item, programme, str(uuid4()), KEY, TODAY, import_rows.event_time(), DAY)
        event = general(item)
        assert (quick is None) == (event is None)
        if quick is None:
            continue
        written = json.loads(quick.event_json)
        VALIDATOR.validate(written)
        assert HouseholdRegisteredV2.model_validate(written).data == event.data  # the model reads it back
        assert without_envelope_ids(written) == without_envelope_ids(json.loads(event.to_bytes()))
        assert UUID(written["id"]).version == 4 and written["subject"] == str(event.data.household_id)
        assert written["data"]["household_id"] == str(household_id_for(item.registration["request_id"]))
        slow = import_rows.registration_of_event(item, event, KEY, DAY)
        assert quick.household == slow.household and quick.niks == slow.niks
        assert quick.members == slow.members
        compared += 1
        flagged += any(m.quality_flags for m in event.data.members)
    assert compared > 350 and flagged > 200  # both paths flag the office typos alike


def changed(item: FileHousehold, member: dict | None = None, **household) -> FileHousehold:
    members = [dict(m) for m in item.registration["members"]]
    members[0].update(member or {})
    if household.pop("nik_twice", False):
        members[1]["nik"] = members[0]["nik"]
    return FileHousehold(item.register_id, item.first_row, item.desil,
                         {**item.registration, **household, "members": members}, item.member_rows)


@pytest.mark.parametrize("member, household, field, rule", [
    ({"nik_status": "pending"}, {}, "nik", "value_error"),  # a pending NIK that has one: the model refuses it
    ({"nik": "9999992503790001"}, {}, "nik", "nik_district"),
    ({}, {"nik_twice": True}, "nik", "nik_repeated"),
    ({}, {"kk_number": "9999990101100001"}, "no_kk", "kk_district"),
    ({}, {"kk_number": "3602229999100001"}, "no_kk", "kk_issue_date"),
    ({}, {"programme": "jscm"}, "kode_desa", "programme_region"),  # JSCM serves Kota Cilegon only
])
def test_what_the_quick_path_is_unsure_of_is_judged_by_the_model_and_the_rules(member, household, field, rule):
    item = next(i for i in households(bad_rate=0.0, duplicate_rate=0.0)
                if not i.registration["region_code"].startswith("3672") and len(i.registration["members"]) > 1)
    odd = changed(item, member, **household)
    programme = odd.registration["programme"] or "jamsosratu"
    assert import_rows.registration(odd, programme, str(uuid4()), KEY, TODAY, "t", DAY) is None
    problems = _judged(odd, programme, uuid4(), KEY, TODAY, DAY)
    assert (field, rule) in [(p.field, p.rule) for p in problems]
    assert all(p.register_id == item.register_id and p.row in item.member_rows for p in problems)


def test_chunks_report_each_household_once_and_carry_the_rest_in_file_order():
    text = list(generate(500, seed=9, bad_rate=0.05, duplicate_rate=0.02))
    found = list(chunks(text, lambda programme: programme == "jamsosratu", KEY, uuid4(), size=100))
    registered = [r for chunk in found for r in chunk.registrations]
    rejected = sum(chunk.rejected for chunk in found)
    assert len(registered) + rejected == 500
    assert [r.file.first_row for r in registered] == sorted(r.file.first_row for r in registered)
    assert all(len(chunk.registrations) <= 100 for chunk in found)
    assert any(p.rule == "programme_scope" for chunk in found for p in chunk.problems)
