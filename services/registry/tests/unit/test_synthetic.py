"""The synthetic register: deterministic, streaming, and read back by the register file as a real export would be."""

import io
from collections import Counter, defaultdict
from contextlib import redirect_stdout
from difflib import SequenceMatcher
from itertools import islice

import pytest

from ejsika_registry.domain.identifiers import check_kk, read_nik
from ejsika_registry.domain.regions import VILLAGES
from ejsika_registry.register_file import FileHousehold, RowProblem, read_households
from ejsika_registry.synthetic import HEADER, REFERENCE_DATE, generate, main

HOUSEHOLDS = 4000
REGENCIES = {"3601", "3602", "3603", "3604", "3671", "3672", "3673", "3674"}


@pytest.fixture(scope="module")
def read_back() -> tuple[list[FileHousehold], list[RowProblem]]:
    households, problems = [], []
    for item in read_households(generate(HOUSEHOLDS, seed=11), today=REFERENCE_DATE):
        (households if isinstance(item, FileHousehold) else problems).append(item)
    return households, problems


def members(households: list[FileHousehold]) -> list[dict]:
    return [member for household in households for member in household.registration["members"]]


def age(member: dict) -> float:
    return (REFERENCE_DATE - member["birth_date"]).days / 365.25


# ---- the stream -------------------------------------------------------------------------------------

def test_same_arguments_same_bytes_another_seed_another_file():
    first = "".join(generate(300, seed=5))
    assert first == "".join(generate(300, seed=5))
    assert first != "".join(generate(300, seed=6))
    assert first != "".join(generate(300, seed=5, bad_rate=0.2))


def test_the_header_comes_first_and_a_household_follows_without_the_rest_being_made():
    lines = list(islice(generate(10**12), 3))  # a file that could never be held
    assert lines[0] == ",".join(HEADER) + "\n"
    assert lines[1].startswith("0000000001,")


def test_a_longer_file_begins_as_the_shorter_one():
    short = list(generate(50, seed=2))
    assert list(islice(generate(500, seed=2), len(short))) == short


def test_the_command_line_writes_the_same_file(tmp_path):
    main(["--households", "40", "--seed", "3", "-o", str(tmp_path / "register.csv")])
    expected = "".join(generate(40, seed=3))
    assert (tmp_path / "register.csv").read_text(encoding="utf-8") == expected
    out = io.StringIO()
    with redirect_stdout(out):
        main(["--households", "40", "--seed", "3"])
    assert out.getvalue() == expected


# ---- read back: good households --------------------------------------------------------------------

def test_without_bad_rows_every_household_reads():
    found = list(read_households(generate(1500, seed=4, bad_rate=0.0), today=REFERENCE_DATE))
    assert all(isinstance(item, FileHousehold) for item in found), [i for i in found if isinstance(i, RowProblem)][:3]
    assert len(found) == 1500


def test_every_regency_and_city_of_banten_with_real_villages(read_back):
    households, _ = read_back
    regions = [household.registration["region_code"] for household in households]
    assert {region[:4] for region in regions} == REGENCIES
    assert all(region in VILLAGES for region in regions)
    assert len(set(regions)) > 1000, "spread over the villages"
    by_size = Counter(region[:4] for region in regions)
    assert by_size["3603"] > by_size["3672"] * 3, "Kab. Tangerang holds far more people than Cilegon"


def test_niks_agree_with_the_declared_birth_date_and_sex_and_are_unique(read_back):
    households, _ = read_back
    niks = []
    for member in members(households):
        if member["nik"] is None:
            continue
        facts = read_nik(member["nik"], REFERENCE_DATE, born=member["birth_date"])
        assert facts.quality_flags(member["birth_date"], member["sex"]) == ()
        assert facts.region.startswith("36")
        niks.append(member["nik"])
    assert len(niks) == len(set(niks)), "no two people share a NIK"


def test_family_cards_are_valid_and_unique(read_back):
    households, _ = read_back
    cards = [household.registration["kk_number"] for household in households]
    for card in cards:
        check_kk(card, REFERENCE_DATE)
    assert len(cards) == len(set(cards))


def test_newborns_without_a_nik_are_pending(read_back):
    households, _ = read_back
    pending = [m for m in members(households) if m["nik"] is None]
    assert len(pending) > 20
    assert all(m["nik_status"] == "pending" and age(m) < 1 for m in pending)


def test_families_look_like_families(read_back):
    households, _ = read_back
    sizes = [len(household.registration["members"]) for household in households]
    assert 3.5 < sum(sizes) / len(sizes) < 4.8
    assert min(sizes) == 1 and max(sizes) <= 10
    heads = [household.registration["members"][0] for household in households]
    assert 0.08 < sum(head["sex"] == "F" for head in heads) / len(heads) < 0.25, "some women head the family"
    everyone = members(households)
    relations = Counter(m["relation"] for m in everyone)
    assert set(relations) == {"head", "spouse", "child", "parent", "other"}
    assert all(age(m) >= 60 for m in everyone if m["relation"] == "parent")
    assert all(0 <= age(m) < 26 for m in everyone if m["relation"] == "child")
    school_age = [m for m in everyone if 7 <= age(m) < 16]
    assert sum(m["in_school"] for m in school_age) / len(school_age) > 0.85
    assert not any(m["in_school"] for m in everyone if age(m) < 7)
    pregnant = [m for m in everyone if m["pregnant"]]
    assert pregnant and all(m["sex"] == "F" and 18 <= age(m) <= 46 for m in pregnant)
    women = [m for m in everyone if m["sex"] == "F" and 18 <= age(m) <= 45]
    assert 0.01 < len(pregnant) / len(women) < 0.08
    assert 0.01 < sum(m["disability"] for m in everyone) / len(everyone) < 0.06


def test_welfare_spreads_over_every_band_and_every_decile(read_back):
    households, _ = read_back
    criteria_held = Counter(sum(value is True for value in household.registration["welfare"].values())
                            for household in households)
    assert min(criteria_held) <= 1 and max(criteria_held) >= 12
    assert {household.desil for household in households} == set(range(1, 11)) | {None}
    powers = {household.registration["welfare"]["installed_power_va"] for household in households}
    assert {450, 900, 1300, 2200} <= powers
    areas = [household.registration["welfare"]["floor_area_per_person_m2"] for household in households]
    assert min(areas) < 8 < max(areas), "under the BPS 8 m2 a person and over it"


def test_both_programmes_and_only_cilegon_has_jscm(read_back):
    households, _ = read_back
    jscm = [h for h in households if h.registration["programme"] == "jscm"]
    assert jscm and all(h.registration["region_code"].startswith("3672") for h in jscm)


# ---- read back: bad rows and duplicates ------------------------------------------------------------

def test_bad_households_come_out_as_problems_at_about_the_rate(read_back):
    households, problems = read_back
    bad = {problem.register_id for problem in problems}
    assert len(households) + len(bad) == HOUSEHOLDS
    assert 0.01 < len(bad) / HOUSEHOLDS < 0.03  # bad_rate 0.02
    assert {problem.rule for problem in problems} == {"nik_format", "birth_date", "region_code", "one_head",
                                                       "pregnant_sex"}


def test_likely_duplicates_same_birth_date_similar_name_another_nik_nearby(read_back):
    households, _ = read_back
    heads: dict[tuple, list[tuple[str, str, str]]] = defaultdict(list)
    for household in households:
        head = household.registration["members"][0]
        heads[(head["birth_date"], head["sex"], household.registration["region_code"][:6])].append(
            (head["name"].upper(), head["nik"], household.register_id))
    pairs = 0
    for same in heads.values():
        for i, (name, nik, _) in enumerate(same):
            for other, other_nik, _ in same[i + 1:]:
                abbreviated = "." in name + other and name.split(".")[0].split()[0] == other.split(".")[0].split()[0]
                if nik != other_nik and (abbreviated or SequenceMatcher(None, name, other).ratio() > 0.8):
                    pairs += 1
    assert 0.005 * HOUSEHOLDS < pairs < 0.02 * HOUSEHOLDS  # duplicate_rate 0.01
