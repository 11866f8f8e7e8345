"""Which changes wait for a decision: the rules as data, the shipped defaults, and what an approval would overwrite."""

import json

import pytest
from pydantic import ValidationError

from ejsika_registry.domain.approval import (
    ApprovalRules, changed, fields_of, load, may_decide, needs_approval, overtaken, touched,
)

DEFAULT = load()


@pytest.mark.parametrize("roles, kind, fields, source, approver", [
    ({"pendamping"}, "update", ["welfare"], "app", "supervisor"),
    ({"pendamping"}, "update", ["address", "welfare"], "app", "supervisor"),  # the whole change waits
    ({"pendamping"}, "update", ["address", "kk_number"], "app", None),  # no eligibility field: at once
    ({"pendamping"}, "member_added", [], "app", "supervisor"),
    ({"pendamping"}, "member_ended", [], "app", "supervisor"),
    ({"pendamping"}, "member_moved", [], "app", "supervisor"),
    ({"pendamping"}, "member_updated", [], "app", None),  # not in the defaults
    (set(), "update", ["welfare"], "visit", "supervisor"),  # a visit, whoever recorded it
    (set(), "member_ended", [], "visit", "supervisor"),
    (set(), "update", ["welfare"], "import", None),
    ({"operator"}, "update", ["welfare"], "operator", None),  # corrections by the office apply at once
    ({"supervisor"}, "member_ended", [], "app", None),
    ({"supervisor", "pendamping"}, "update", ["welfare"], "app", None),
    ({"supervisor"}, "update", ["welfare"], "visit", None),
])
def test_the_shipped_rules_hold_field_changes_that_move_eligibility_for_a_supervisor(roles, kind, fields, source,
                                                                                      approver):
    assert needs_approval(DEFAULT, roles, kind, fields, source) == approver


def test_the_first_rule_that_holds_names_the_approver_and_fields_narrow_a_rule():
    rules = ApprovalRules.model_validate({
        "applies_at_once": ["operator"],
        "rules": [{"kind": "update", "fields": ["region_code"], "roles": ["pendamping", "supervisor"],
                   "approver": "operator"},
                  {"kind": "update", "roles": ["pendamping"], "approver": "supervisor"}],
    })
    assert needs_approval(rules, {"supervisor"}, "update", ["region_code"]) == "operator"
    assert needs_approval(rules, {"pendamping"}, "update", ["region_code", "address"]) == "operator"
    assert needs_approval(rules, {"pendamping"}, "update", ["address"]) == "supervisor"  # no fields: any
    assert needs_approval(rules, {"supervisor"}, "update", ["address"]) is None
    assert needs_approval(rules, {"operator", "pendamping"}, "update", ["region_code"]) is None


def test_a_proposal_is_decided_by_its_approver_or_a_role_that_decides_everything_of_its_scope():
    assert may_decide(DEFAULT, {"supervisor"}, "supervisor")
    assert may_decide(DEFAULT, {"operator"}, "supervisor")
    assert not may_decide(DEFAULT, {"pendamping"}, "supervisor")
    assert not may_decide(DEFAULT, {"auditor"}, "supervisor")
    strict = DEFAULT.model_copy(update={"also_decided_by": frozenset()})
    assert not may_decide(strict, {"operator"}, "supervisor")


@pytest.mark.parametrize("broken, why", [
    ({"applies_at_once": [], "rules": [{"kind": "update", "approver": "supervisor"}]}, "no role and no source"),
    ({"applies_at_once": [], "rules": [{"kind": "update", "roles": ["caseworker"], "approver": "supervisor"}]},
     "roles"),
    ({"applies_at_once": [], "rules": [{"kind": "update", "roles": ["pendamping"], "approver": "boss"}]}, "approver"),
    ({"applies_at_once": [], "rules": [{"kind": "update", "roles": ["pendamping"], "approver": "supervisor",
                                        "feilds": ["welfare"]}]}, "feilds"),
    ({"rules": []}, "applies_at_once"),
])
def test_a_rules_file_that_breaks_the_shape_is_refused_at_start(broken, why):
    with pytest.raises(ValidationError, match=why):
        ApprovalRules.model_validate(broken)


def test_rules_are_read_from_the_file_the_setting_names(tmp_path):
    path = tmp_path / "approval.json"
    path.write_text(json.dumps({"applies_at_once": ["operator"], "rules": [
        {"kind": "update", "fields": ["address"], "roles": ["supervisor"], "approver": "operator"}]}))
    rules = load(path)
    assert needs_approval(rules, {"supervisor"}, "update", ["address"]) == "operator"
    assert needs_approval(rules, {"pendamping"}, "update", ["welfare"]) is None


def test_an_update_touches_welfare_indicator_by_indicator_and_other_kinds_no_field():
    payload = {"welfare": {"no_electricity": True, "installed_power_va": None}, "address": "Jl. Baru"}
    assert touched("update", payload) == {"welfare.no_electricity", "welfare.installed_power_va", "address"}
    assert fields_of("update", payload) == ["address", "welfare"]
    assert touched("member_ended", {"member_id": "m"}) == frozenset() and fields_of("member_ended", {}) == []


def test_a_history_row_changed_only_the_indicators_whose_values_differ():
    row = {"welfare": {"old": {"no_electricity": True, "earth_or_bamboo_floor": True},
                       "new": {"no_electricity": False, "earth_or_bamboo_floor": True, "no_savings_over_500k": True}},
           "address": {"old": "a", "new": "b"}}
    assert changed(row) == {"welfare.no_electricity", "welfare.no_savings_over_500k", "address"}


def test_a_proposal_is_overtaken_only_by_later_changes_of_what_it_sets():
    payload = {"welfare": {"no_electricity": False}}
    other_indicator = {"welfare": {"old": {}, "new": {"earth_or_bamboo_floor": True}}}
    same_indicator = {"welfare": {"old": {"no_electricity": True}, "new": {"no_electricity": None}}}
    proposal_rows = {}  # a proposal or a decision: a version with no changes
    assert overtaken("update", payload, [other_indicator, proposal_rows, {"status": {"old": "a", "new": "b"}}]) == []
    assert overtaken("update", payload, [other_indicator, same_indicator]) == ["welfare.no_electricity"]
