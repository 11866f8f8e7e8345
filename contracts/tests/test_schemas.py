"""Published event schemas are frozen: the models must match them, and changes must stay readable."""

from __future__ import annotations

import copy
import json

import pytest

from ejsika_contracts import ALL_EVENTS, HOUSEHOLD, TOPICS, HouseholdRegistered
from ejsika_contracts.schemas import SCHEMA_DIR, breaking_changes, render, schema_of, schema_path


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda cls: cls.schema_name())
def test_every_event_version_has_its_schema_committed_and_unchanged(event):
    path = schema_path(event)
    assert path.exists(), f"run `python -m ejsika_contracts.schemas --write` to freeze {event.schema_name()}"
    assert render(schema_of(event)) == path.read_text(), (
        f"{event.schema_name()} drifted from its frozen schema: add optional fields in a compatible way and "
        "regenerate, or publish a new version of the event"
    )


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_committed_schema_is_still_readable_by_the_current_model(path):
    name = path.stem
    current = next((cls for cls in ALL_EVENTS if cls.schema_name() == name), None)
    assert current is not None, f"{name} is committed but no model publishes it any more"
    assert breaking_changes(json.loads(path.read_text()), schema_of(current)) == []


def test_compatibility_check_flags_what_breaks_old_readers():
    old = schema_of(HouseholdRegistered)
    removed = copy.deepcopy(old)
    del removed["$defs"]["HouseholdRegisteredData"]["properties"]["address"]
    retyped = copy.deepcopy(old)
    retyped["$defs"]["Member"]["properties"]["in_school"] = {"type": "string"}
    required = copy.deepcopy(old)
    required["$defs"]["WelfareIndicators"]["required"] = ["no_electricity"]
    added = copy.deepcopy(old)
    added["$defs"]["Member"]["properties"]["phone"] = {"type": "string", "default": ""}

    assert any("address: removed" in p for p in breaking_changes(old, removed))
    assert any("in_school: no longer accepts" in p for p in breaking_changes(old, retyped))
    assert any("no_electricity: newly required" in p for p in breaking_changes(old, required))
    assert breaking_changes(old, added) == []


def test_topics_declare_partitions_and_dead_letter_topics():
    names = [t.name for t in TOPICS]
    assert len(set(names)) == len(names)
    for topic in TOPICS:
        assert topic.partitions >= 1 and topic.dead_letter == topic.name + ".dlq"
    assert HOUSEHOLD.parse(HouseholdRegistered.model_validate(_registered()).to_bytes()).subject == _registered()["subject"]


def test_unknown_fields_are_rejected():
    with pytest.raises(ValueError):
        HOUSEHOLD.parse(json.dumps({**_registered(), "surprise": 1}).encode())


def _registered() -> dict:
    return {
        "source": "registry",
        "subject": "6f1c1f0e-0000-4000-8000-000000000001",
        "correlation_id": "6f1c1f0e-0000-4000-8000-000000000002",
        "data": {
            "household_id": "6f1c1f0e-0000-4000-8000-000000000001",
            "programme": "jscm",
            "region_code": "3672011001",
            "kk_number": "3672010101200001",
            "address": "Jl. Contoh",
            "members": [{"nik": "3672011203800001", "name": "A", "sex": "M", "birth_date": "1980-03-12",
                         "relation": "head"}],
            "welfare": {},
        },
    }
