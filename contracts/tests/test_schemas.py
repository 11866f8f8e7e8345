"""Published event schemas are frozen: the models must match them, and changes must stay readable."""

from __future__ import annotations

import copy
import json

import pytest

from pydantic import ValidationError

from ejsika_contracts import ALL_EVENTS, HOUSEHOLD, TOPICS, Event, HouseholdRegistered, Member, Topic, topic_of
from ejsika_contracts.schemas import SCHEMA_DIR, breaking_changes, render, schema_of, schema_path, write


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
    assert all(topic.partitions >= 1 for topic in TOPICS)
    # the names operators, ACLs and dashboards know them by
    assert {topic.name: topic.dead_letter for topic in TOPICS} == {
        "ejsika.household": "ejsika.household.dlq", "ejsika.eligibility": "ejsika.eligibility.dlq",
        "ejsika.visit": "ejsika.visit.dlq", "ejsika.compliance": "ejsika.compliance.dlq",
        "ejsika.agency": "ejsika.agency.dlq"}
    assert HOUSEHOLD.parse(HouseholdRegistered.model_validate(_registered()).to_bytes()).subject == _registered()["subject"]


# What a newer compatible version may add: optional fields of any shape, at any level.
UNKNOWN = {"x_added_later": "text", "x_added_later_object": {"nested": [1, {"deep": True}], "none": None}}

# One valid record of every event version, with `id` and `time` so that two readings are equal.
SAMPLES = {
    "quota.admitted.v1": lambda: {
        "id": "6f1c1f0e-0000-4000-8000-0000000000c1",
        "type": "quota.admitted",
        "source": "eligibility",
        "time": "2026-01-02T03:04:06+07:00",
        "subject": "6f1c1f0e-0000-4000-8000-000000000001",
        "dataversion": 1,
        "correlation_id": "6f1c1f0e-0000-4000-8000-000000000002",
        "data": {
            "household_id": "6f1c1f0e-0000-4000-8000-000000000001",
            "programme": "jscm", "year": 2026, "region": "3672", "rank": 1, "score": 72.0, "desil": 2,
            "rule_set": "jscm.v1", "yearly_amount": 3000000,
            "funders": [{"funder": "apbd-kota-cilegon", "share": 1.0, "amount": 3000000}],
        },
    },
    "household.registered.v1": lambda: {
        **_registered(),
        "id": "6f1c1f0e-0000-4000-8000-0000000000a1",
        "time": "2025-01-02T03:04:05+07:00",
        "type": "household.registered",
        "dataversion": 1,
        "causation_id": None,
    },
    "eligibility.assessed.v1": lambda: {
        "id": "6f1c1f0e-0000-4000-8000-0000000000b1",
        "type": "eligibility.assessed",
        "source": "eligibility",
        "time": "2025-01-02T03:04:06+07:00",
        "subject": "6f1c1f0e-0000-4000-8000-000000000001",
        "dataversion": 1,
        "correlation_id": "6f1c1f0e-0000-4000-8000-000000000002",
        "causation_id": "6f1c1f0e-0000-4000-8000-0000000000a1",
        "data": {
            "household_id": "6f1c1f0e-0000-4000-8000-000000000001",
            "programme": "jscm",
            "region_code": "3672011001",
            "rule_set": "starter-v1",
            "score": 62.5,
            "eligible": True,
            "components": ["toddler"],
            "member_counts": {"toddlers": 1},
            "explanation": [{"indicator": "no_electricity", "observed": True, "points": 10.0}],
        },
    },
    "visit.scheduled.v1": lambda: {
        "id": "6f1c1f0e-0000-4000-8000-0000000000c1",
        "type": "visit.scheduled",
        "source": "monitoring",
        "time": "2025-01-02T03:04:07+07:00",
        "subject": "6f1c1f0e-0000-4000-8000-000000000001",
        "dataversion": 1,
        "correlation_id": "6f1c1f0e-0000-4000-8000-000000000002",
        "data": {
            "household_id": "6f1c1f0e-0000-4000-8000-000000000001",
            "visit_id": "6f1c1f0e-0000-4000-8000-0000000000c2",
            "kind": "first_visit",
            "due_date": "2025-01-09",
        },
    },
    "household.registered.v2": lambda: _change("household.registered", 2, "a2", {
        **_registered()["data"],
        "version": 1,
        "members": [{**m, "member_id": f"6f1c1f0e-0000-4000-8000-00000000010{i}"}
                    for i, m in enumerate(_registered()["data"]["members"])]
                   + [{"member_id": "6f1c1f0e-0000-4000-8000-000000000109", "nik_status": "pending", "name": "Bayi",
                       "sex": "F", "birth_date": "2025-01-01", "relation": "child"}],
    }),
    "household.updated.v1": lambda: _change("household.updated", 1, "a3", {
        **_household(4), "changed": ["address", "welfare"], "address": "Jl. Baru", "welfare": {"no_electricity": True},
    }),
    "member.added.v1": lambda: _change("member.added", 1, "a4", {
        **_household(5), "member": _member(), "reason": "birth", "effective_date": "2025-01-01",
    }),
    "member.updated.v1": lambda: _change("member.updated", 1, "a5", {
        **_household(6), "member": _member(), "changed": ["in_school"],
    }),
    "member.ended.v1": lambda: _change("member.ended", 1, "a6", {
        **_household(7), "member_id": MEMBER_ID, "kind": "died", "effective_date": "2025-01-01",
    }),
    "member.moved.v1": lambda: _change("member.moved", 1, "a7", {
        **_household(2), "from_household_id": "6f1c1f0e-0000-4000-8000-000000000003", "from_version": 3,
        "previous_member_id": MEMBER_ID, "member": _member(), "effective_date": "2025-01-01",
    }),
    "household.head_changed.v1": lambda: _change("household.head_changed", 1, "a8", {
        **_household(8), "head_member_id": MEMBER_ID, "previous_head_member_id": "6f1c1f0e-0000-4000-8000-000000000111",
        "relations": [{"member_id": "6f1c1f0e-0000-4000-8000-000000000111", "relation": "parent"}],
        "kk_number": "3672010101250001",
    }),
    "household.split.v1": lambda: _change("household.split", 1, "a9", {
        **_household(9), "new_household_id": "6f1c1f0e-0000-4000-8000-000000000004", "member_ids": [MEMBER_ID],
    }),
    "enrolment.changed.v1": lambda: _change("enrolment.changed", 1, "aa", {
        **_household(10), "programme": "jscm", "region_code": "3672011001", "status": "exited",
        "previous_status": "active", "exit_kind": "mandiri", "reason": "declared able", "effective_date": "2025-01-01",
    }),
    "member.flagged.v1": lambda: _change("member.flagged", 1, "ab", {
        **_household(11), "member_id": MEMBER_ID, "quality_flags": ["nik_sex_mismatch"],
    }),
    "visit.recorded.v1": lambda: {**_change("visit.recorded", 1, "c3", {
        "household_id": "6f1c1f0e-0000-4000-8000-000000000001", "visit_id": "6f1c1f0e-0000-4000-8000-0000000000c4",
        "pendamping_id": "pendamping-demo", "captured_at": "2025-01-02T09:00:00+07:00",
        "received_at": "2025-01-04T10:00:00+07:00", "location": {"latitude": -6.0, "longitude": 106.0},
        "observations": {
            "school": [{"member_id": MEMBER_ID, "enrolled": True, "days_present": 18, "school_days": 20}],
            "antenatal": [{"member_id": MEMBER_ID, "checked": True}],
            "toddlers": [{"member_id": MEMBER_ID, "weighed": True, "weight_kg": 11.5, "immunised_on_schedule": True}],
            "condition": {"welfare": {"no_electricity": False},
                          "births": [{"name": "Bayi", "sex": "F", "birth_date": "2025-01-01"}],
                          "left": [{"member_id": MEMBER_ID, "kind": "moved_out", "effective_date": "2025-01-01"}]},
        }}), "source": "monitoring"},
    "visit.overdue.v1": lambda: {**_change("visit.overdue", 1, "c5", {
        "household_id": "6f1c1f0e-0000-4000-8000-000000000001", "due_date": "2025-01-09", "overdue": True,
        "pendamping_id": "pendamping-demo"}), "source": "monitoring"},
    "compliance.verified.v1": lambda: {**_change("compliance.verified", 1, "d1", {
        "household_id": "6f1c1f0e-0000-4000-8000-000000000001", "programme": "jscm", "period_start": "2025-01-01",
        "period_end": "2025-01-31", "result": "non_compliant", "revision": 2,
        "members": [{"member_id": MEMBER_ID, "commitment": "school", "result": "non_compliant",
                     "attendance_rate": 0.5}]}), "source": "monitoring"},
    "compliance.escalated.v1": lambda: {**_change("compliance.escalated", 1, "d2", {
        "household_id": "6f1c1f0e-0000-4000-8000-000000000001", "programme": "jscm", "member_id": MEMBER_ID,
        "commitment": "school", "kind": "school_dropout_risk", "consecutive_periods": 3,
        "period_end": "2025-03-31"}), "source": "monitoring"},
    "agency.answered.v1": lambda: {**_change("agency.answered", 1, "e1", {
        "household_id": "6f1c1f0e-0000-4000-8000-000000000001", "notification_id": "6f1c1f0e-0000-4000-8000-0000000000e0",
        "agency": "dinas-pendidikan", "programme": "sma_smk_placement", "outcome": "declined",
        "reason": "no place left at the school", "member_id": MEMBER_ID,
        "answered_at": "2025-04-02T10:00:00+07:00"}), "source": "notifications"},
}

MEMBER_ID = "6f1c1f0e-0000-4000-8000-000000000110"


def _household(version: int) -> dict:
    return {"household_id": "6f1c1f0e-0000-4000-8000-000000000001", "version": version}


def _member() -> dict:
    return {"member_id": MEMBER_ID, "nik": "3672015508120002", "name": "B", "sex": "F", "birth_date": "2012-08-15",
            "relation": "child", "in_school": True}


def _change(event_type: str, dataversion: int, tag: str, data: dict) -> dict:
    return {"id": f"6f1c1f0e-0000-4000-8000-0000000000{tag}", "type": event_type, "source": "registry",
            "time": "2025-01-02T03:04:05+07:00", "subject": "6f1c1f0e-0000-4000-8000-000000000001",
            "dataversion": dataversion, "correlation_id": "6f1c1f0e-0000-4000-8000-000000000002",
            "causation_id": None, "data": data}

# A topic carrying several event classes: its reader picks the class by type and dataversion.
MIXED = Topic("test.mixed", partitions=1, events=ALL_EVENTS, description="every event on one topic")

# Rules a reader still enforces, whatever it tolerates: (what breaks, path, new value or DELETE).
DELETE = object()
COMMON_BREAKS = [
    ("unknown type", ("type",), "household.renamed"),
    ("unknown dataversion", ("dataversion",), 99),
    ("missing envelope field", ("source",), DELETE),
    ("missing data", ("data",), DELETE),
    ("wrong envelope type", ("correlation_id",), "not-a-uuid"),
    ("wrong data type", ("data", "household_id"), 42),
]
NESTED_BREAKS = {
    "household.registered.v1": [
        ("missing member field", ("data", "members", 0, "nik"), DELETE),
        ("wrong member type", ("data", "members", 0, "sex"), "X"),
        ("wrong welfare type", ("data", "welfare", "installed_power_va"), "a lot"),
        ("broken constraint", ("data", "members"), []),
    ],
    "quota.admitted.v1": [
        ("missing funder amount", ("data", "funders", 0, "amount"), DELETE),
        ("rank zero", ("data", "rank"), 0),
        ("missing data field", ("data", "region"), DELETE),
    ],
    "eligibility.assessed.v1": [
        ("missing explanation field", ("data", "explanation", 0, "points"), DELETE),
        ("wrong count", ("data", "member_counts", "toddlers"), -1),
        ("missing data field", ("data", "rule_set"), DELETE),
    ],
    "visit.scheduled.v1": [
        ("unknown kind", ("data", "kind"), "house_party"),
        ("wrong date", ("data", "due_date"), "next week"),
    ],
    "household.registered.v2": [
        ("a verified member without a NIK", ("data", "members", 0, "nik"), DELETE),
        ("a pending member with a NIK", ("data", "members", -1, "nik"), "3672015508120002"),
        ("missing member id", ("data", "members", 1, "member_id"), DELETE),
        ("version zero", ("data", "version"), 0),
    ],
    "household.updated.v1": [
        ("nothing changed", ("data", "changed"), []),
        ("unknown field changed", ("data", "changed"), ["nik"]),
        ("missing version", ("data", "version"), DELETE),
    ],
    "member.added.v1": [
        ("unknown reason", ("data", "reason"), "adopted by aliens"),
        ("missing member", ("data", "member"), DELETE),
    ],
    "member.updated.v1": [("nothing changed", ("data", "changed"), []), ("wrong sex", ("data", "member", "sex"), "X")],
    "member.ended.v1": [("unknown kind", ("data", "kind"), "vanished"), ("missing date", ("data", "effective_date"), DELETE)],
    "member.moved.v1": [("missing origin", ("data", "from_household_id"), DELETE),
                        ("wrong origin version", ("data", "from_version"), 0)],
    "household.head_changed.v1": [("bad No. KK", ("data", "kk_number"), "123"),
                                  ("unknown relation", ("data", "relations", 0, "relation"), "boss")],
    "household.split.v1": [("nobody left", ("data", "member_ids"), []), ("missing new id", ("data", "new_household_id"), DELETE)],
    "enrolment.changed.v1": [("unknown status", ("data", "status"), "paused"),
                             ("unknown exit kind", ("data", "exit_kind"), "evicted")],
    "member.flagged.v1": [("no flag", ("data", "quality_flags"), [])],
    "visit.recorded.v1": [
        ("more present days than school days", ("data", "observations", "school", 0, "days_present"), 21),
        ("latitude off the globe", ("data", "location", "latitude"), 91),
        ("unknown way of leaving", ("data", "observations", "condition", "left", 0, "kind"), "vanished"),
        ("missing captured_at", ("data", "captured_at"), DELETE),
    ],
    "visit.overdue.v1": [("missing due date", ("data", "due_date"), DELETE)],
    "compliance.verified.v1": [("unknown result", ("data", "result"), "maybe"),
                               ("unknown commitment", ("data", "members", 0, "commitment"), "church")],
    "compliance.escalated.v1": [("zero periods", ("data", "consecutive_periods"), 0),
                                ("unknown kind", ("data", "kind"), "bad_mood")],
    "agency.answered.v1": [("unknown outcome", ("data", "outcome"), "maybe"),
                           ("declined without a reason", ("data", "reason"), None),
                           ("missing notification", ("data", "notification_id"), DELETE)],
}


def _by_name(name: str) -> type[Event]:
    return next(cls for cls in ALL_EVENTS if cls.schema_name() == name)


def _with_unknown_fields(value):
    """The record as a newer compatible producer might write it: unknown fields in every object."""
    if isinstance(value, dict):
        return {**{k: _with_unknown_fields(v) for k, v in value.items()}, **copy.deepcopy(UNKNOWN)}
    if isinstance(value, list):
        return [_with_unknown_fields(v) for v in value]
    return value


def _object_paths(value, path=()):
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from _object_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _object_paths(item, (*path, index))


def _broken(record: dict, path: tuple, value) -> dict:
    record = copy.deepcopy(record)
    *parents, last = path
    target = record
    for step in parents:
        target = target[step]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return record


def _raw(record: dict) -> bytes:
    return json.dumps(record).encode()


def test_every_event_version_has_a_sample_for_the_compatibility_tests():
    assert sorted(SAMPLES) == sorted(cls.schema_name() for cls in ALL_EVENTS)
    assert sorted(NESTED_BREAKS) == sorted(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_an_old_reader_accepts_a_newer_compatible_version(name):
    cls, record = _by_name(name), SAMPLES[name]()
    newer = _with_unknown_fields(record)
    assert newer["data"]["x_added_later"] and newer["x_added_later_object"]  # top level and data ...
    read = topic_of(cls).parse(_raw(newer))

    assert type(read) is cls
    assert read == topic_of(cls).parse(_raw(record)) == cls.model_validate(record)
    assert read.to_bytes() == cls.model_validate(record).to_bytes()  # nothing unknown is carried on


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_reader_of_a_topic_with_several_events_is_tolerant_too(name):
    cls, record = _by_name(name), SAMPLES[name]()
    read = MIXED.parse(_raw(_with_unknown_fields(record)))
    assert type(read) is cls and read == cls.model_validate(record)


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [pytest.param(name, path, value, id=f"{name}: {rule}")
     for name in sorted(SAMPLES) for rule, path, value in COMMON_BREAKS + NESTED_BREAKS[name]],
)
@pytest.mark.parametrize("extras", [False, True], ids=["exact", "with-unknown-fields"])
def test_a_record_breaking_a_rule_is_still_refused(name, path, value, extras):
    cls, record = _by_name(name), SAMPLES[name]()
    if extras:
        record = _with_unknown_fields(record)
    for topic in (topic_of(cls), MIXED):  # one event class, or chosen by type and dataversion
        with pytest.raises(ValidationError):
            topic.parse(_raw(_broken(record, path, value)))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_producers_stay_strict_about_unknown_fields(name):
    cls, record = _by_name(name), SAMPLES[name]()
    with pytest.raises(ValidationError) as error:
        cls.model_validate(_with_unknown_fields(record))
    problems = error.value.errors()
    assert {p["type"] for p in problems} == {"extra_forbidden"}
    refused_in = {p["loc"][:-1] for p in problems}
    assert refused_in == set(_object_paths(record))  # the envelope, data and every nested object
    with pytest.raises(ValidationError):
        cls.model_validate_json(_raw(_with_unknown_fields(record)))
    with pytest.raises(ValidationError):
        cls(**{**record, "surprise": 1})


def test_producing_code_cannot_build_a_nested_object_with_an_unknown_field():
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        Member(nik="3672011203800001", name="A", sex="M", birth_date="1980-03-12", relation="head", phone="x")


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


def test_writing_extends_a_committed_schema_compatibly_and_refuses_a_breaking_change(tmp_path):
    for cls in ALL_EVENTS:
        (tmp_path / schema_path(cls).name).write_text(render(schema_of(cls)))
    name = schema_path(HouseholdRegistered).name
    older = schema_of(HouseholdRegistered)
    del older["$defs"]["Member"]["properties"]["disability"]  # the committed one lacks a field added since
    (tmp_path / name).write_text(render(older))
    assert write(tmp_path) == ([name], [])
    assert (tmp_path / name).read_text() == render(schema_of(HouseholdRegistered))

    newer = schema_of(HouseholdRegistered)
    newer["$defs"]["Member"]["properties"]["phone"] = {"type": "string"}  # a field the model no longer has
    (tmp_path / name).write_text(render(newer))
    written, refused = write(tmp_path)
    assert written == [] and len(refused) == 1 and "phone: removed" in refused[0]
    assert (tmp_path / name).read_text() == render(newer), "a breaking change leaves the committed schema as it was"
