"""Loading a rule set refuses each kind of fault with its field path and rule."""

import copy
import json

import pytest

from ejsika_eligibility.domain.rules import DEFAULTS, INDICATORS, InvalidRuleSet, defaults, load

DOCUMENT = json.loads((DEFAULTS / "jamsosratu.v1.json").read_text())


def faults(change) -> set[tuple[str, str]]:
    document = copy.deepcopy(DOCUMENT)
    change(document)
    with pytest.raises(InvalidRuleSet) as refused:
        load(document)
    return {(e.field, e.rule) for e in refused.value.errors}


def test_the_shipped_defaults_load_and_weigh_every_indicator_to_100_points():
    shipped = {r.id: r for r in defaults()}
    assert set(shipped) == {"jamsosratu.v1", "jscm.v1"}
    for rules in shipped.values():
        assert set(rules.indicators) == set(INDICATORS)
        assert sum(i.most for i in rules.indicators.values()) == 100
        assert [c.amount for c in rules.components] == [3_000_000, 3_000_000, 2_400_000, 2_400_000, 2_000_000,
                                                        1_500_000, 900_000]
        assert rules.max_components == 4
    assert shipped["jscm.v1"].entry.max_desil < shipped["jamsosratu.v1"].entry.max_desil


def test_an_unknown_indicator_is_refused_by_name():
    def change(d):
        d["indicators"]["owns_a_car"] = d["indicators"].pop("no_electricity")
    assert ("indicators.owns_a_car", "unknown_indicator") in faults(change)


def test_an_indicator_without_weight_or_bands_or_with_both_is_refused():
    assert ("indicators.no_electricity", "weight_or_bands") in faults(
        lambda d: d["indicators"].__setitem__("no_electricity", {}))
    assert ("indicators.no_electricity", "weight_or_bands") in faults(
        lambda d: d["indicators"]["no_electricity"].__setitem__("bands", [{"points": 6}]))


def test_a_numeric_indicator_needs_bands_and_a_yes_no_one_a_weight():
    assert ("indicators.installed_power_va.weight", "bands_required") in faults(
        lambda d: d["indicators"].__setitem__("installed_power_va", {"weight": 6}))
    assert ("indicators.no_electricity.bands", "weight_required") in faults(
        lambda d: d["indicators"].__setitem__("no_electricity", {"bands": [{"points": 6}]}))


def test_overlapping_and_gapped_bands_are_refused_at_the_band():
    path = "indicators.floor_area_per_person_m2.bands"
    assert (f"{path}[1].from", "band_overlap") in faults(
        lambda d: d["indicators"]["floor_area_per_person_m2"]["bands"][1].__setitem__("from", 7))
    assert (f"{path}[1].from", "band_gap") in faults(
        lambda d: d["indicators"]["floor_area_per_person_m2"]["bands"][1].__setitem__("from", 9))
    assert (f"{path}[2].below", "band_gap") in faults(
        lambda d: d["indicators"]["floor_area_per_person_m2"]["bands"][2].__setitem__("below", 50))


def test_points_that_do_not_add_up_to_100_are_refused():
    assert ("indicators", "points_total") in faults(lambda d: d["indicators"]["no_electricity"].__setitem__("weight", 9))


def test_desil_cuts_must_be_nine_and_strictly_descending():
    assert ("desil", "desil_cuts") in faults(lambda d: d.__setitem__("desil", [80, 60, 40]))
    assert ("desil[3]", "strictly_descending") in faults(lambda d: d["desil"].__setitem__(3, 65))


def test_a_missing_programme_and_an_unknown_member_condition_are_refused():
    assert ("programme", "missing") in faults(lambda d: d.pop("programme"))
    assert ("components[1].member.height_cm", "unknown_condition") in faults(
        lambda d: d["components"][1]["member"].__setitem__("height_cm", 90))


def test_every_fault_comes_with_a_reason_and_several_are_reported_together():
    document = copy.deepcopy(DOCUMENT)
    document["desil"][3] = 65
    document["components"][0]["member"] = {}
    with pytest.raises(InvalidRuleSet) as refused:
        load(document)
    assert {e.rule for e in refused.value.errors} == {"strictly_descending", "unconditional"}
    assert all(e.reason for e in refused.value.errors)
