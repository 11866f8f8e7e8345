"""Programmes are configuration: the shipped file holds Jamsosratu and JSCM, and another file replaces them."""

import json

import pytest
from pydantic import ValidationError

from ejsika_registry.domain import programmes
from ejsika_registry.domain.programmes import DEFAULT_FILE, PROGRAMMES, exclusive, load
from ejsika_registry.domain.regions import VILLAGES, RegionError, programme_for


def test_the_default_file_holds_the_two_programmes_with_their_funders_and_regions():
    shipped = load(DEFAULT_FILE)
    assert sorted(shipped) == ["jamsosratu", "jscm"]
    assert shipped["jamsosratu"].region_prefixes == ("36",) and shipped["jscm"].region_prefixes == ("3672",)
    assert shipped["jamsosratu"].funder == "APBD Provinsi Banten"
    assert shipped["jscm"].funder == "APBD Kota Cilegon"
    # DOMAIN.md: recipients may not also receive other social assistance
    assert exclusive("jamsosratu", "jscm", shipped) and exclusive("jscm", "jamsosratu", shipped)
    assert all("PKH" in p.excludes_national for p in shipped.values())
    prefixes = {prefix for p in shipped.values() for prefix in p.region_prefixes}
    assert all(any(code.startswith(prefix) for code in VILLAGES) for prefix in prefixes)


def test_the_region_rules_read_the_programmes_in_force():
    assert PROGRAMMES == load(DEFAULT_FILE)
    assert programme_for("jscm", "3672011001").funder == "APBD Kota Cilegon"


def _write(tmp_path, *entries):
    path = tmp_path / "programmes.json"
    path.write_text(json.dumps({"programmes": list(entries)}))
    return path


def test_another_file_replaces_the_programmes_everywhere(tmp_path):
    serang = {"code": "jss", "name": "Jaminan Sosial Serang", "funder": "APBD Kota Serang", "region_prefixes": ["3673"]}
    try:
        programmes.use(_write(tmp_path, serang))
        assert programme_for("jss", "3673011001").name == "Jaminan Sosial Serang"
        with pytest.raises(RegionError) as refused:
            programme_for("jscm", "3672011001")
        assert refused.value.rule == "programme"
    finally:
        programmes.use(None)
    assert sorted(PROGRAMMES) == ["jamsosratu", "jscm"]


def test_exclusivity_holds_when_either_programme_names_the_other(tmp_path):
    one_sided = load(_write(
        tmp_path,
        {"code": "a-prog", "name": "A", "funder": "APBD", "region_prefixes": ["36"], "exclusive_with": ["b-prog"]},
        {"code": "b-prog", "name": "B", "funder": "APBD", "region_prefixes": ["36"]},
        {"code": "c-prog", "name": "C", "funder": "APBD", "region_prefixes": ["36"]},
    ))
    assert exclusive("b-prog", "a-prog", one_sided) and exclusive("a-prog", "b-prog", one_sided)
    assert not exclusive("a-prog", "c-prog", one_sided) and not exclusive("a-prog", "a-prog", one_sided)


@pytest.mark.parametrize("entries", [
    [{"code": "jscm", "name": "A", "funder": "x", "region_prefixes": ["36"]},
     {"code": "jscm", "name": "B", "funder": "x", "region_prefixes": ["36"]}],  # a code twice
    [{"code": "jscm", "name": "A", "funder": "x", "region_prefixes": ["36"], "exclusive_with": ["nowhere"]}],
    [{"code": "jscm", "name": "A", "funder": "x", "region_prefixes": ["36"], "exclusive_with": ["jscm"]}],
    [{"code": "jscm", "name": "A", "funder": "x", "region_prefixes": []}],  # pays nowhere
    [{"code": "jscm", "name": "A", "funder": "x", "region_prefixes": ["36.72"]}],  # dotted code
    [{"code": "jscm", "name": "A", "region_prefixes": ["36"]}],  # no funder
    [],
])
def test_a_file_that_breaks_the_rules_is_refused(tmp_path, entries):
    with pytest.raises(ValidationError):
        load(_write(tmp_path, *entries))
