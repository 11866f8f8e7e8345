"""NIK and No. KK: each rule by example, then properties over real districts and every possible date."""

from datetime import date, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from ejsika_registry.domain.identifiers import (
    NIK_BIRTH_DATE_MISMATCH, NIK_SEX_MISMATCH, InvalidIdentifier, check_kk, quality_flags, read_nik,
)
from ejsika_registry.domain.regions import DISTRICTS

TODAY = date(2026, 11, 28)
SORTED_DISTRICTS = sorted(DISTRICTS)


def nik(district: str, born: date, sex: str, serial: int = 1) -> str:
    return f"{district}{born.day + (40 if sex == 'F' else 0):02d}{born:%m%y}{serial:04d}"


def possible(yy: int, mm: int, dd: int) -> bool:
    """Whether DDMMYY is a date, not after today, in some century."""
    for year in (1900 + yy, 2000 + yy):
        try:
            if date(year, mm, dd) <= TODAY:
                return True
        except ValueError:
            pass
    return False


def refused(value: str, rule: str, **kwargs) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as error:
        read_nik(value, TODAY, **kwargs)
    assert error.value.rule == rule
    assert not value or value[:6] not in str(error.value), "the reason never echoes the NIK"
    return error.value


# ---- examples, one per rule ------------------------------------------------------------------------

def test_a_woman_s_nik_carries_her_birth_day_plus_forty():
    facts = read_nik("3672015508120002", TODAY)
    assert (facts.sex, facts.birth_date, facts.region) == ("F", date(2012, 8, 15), "367201")


def test_without_a_declared_birth_date_the_year_is_read_against_today():
    assert read_nik("3672011708050001", TODAY).birth_date == date(2005, 8, 17)
    assert read_nik("3672011708300001", TODAY).birth_date == date(1930, 8, 17)
    assert read_nik("3672011712260001", TODAY).birth_date == date(1926, 12, 17)


def test_the_century_comes_from_the_declared_birth_date():
    # A 100-year-old born in March 1926: read against today, ...26 would be March 2026.
    assert read_nik("3672011203260001", TODAY).birth_date == date(2026, 3, 12)
    facts = read_nik("3672011203260001", TODAY, born=date(1926, 3, 12))
    assert facts.birth_date == date(1926, 3, 12)
    assert facts.quality_flags(date(1926, 3, 12), "M") == ()


def test_29_february_of_00_is_possible_in_2000_only():
    assert read_nik("3672012902000001", TODAY).birth_date == date(2000, 2, 29)
    facts = read_nik("3672012902000001", TODAY, born=date(1900, 3, 1))  # the declared century cannot hold it
    assert facts.quality_flags(date(1900, 3, 1), "M") == (NIK_BIRTH_DATE_MISMATCH,)


@pytest.mark.parametrize("value", ["367201120380000", "36720112038000011", "36720112AB800001", "", "３６７２０１１２０３８００００１"])
def test_a_nik_that_is_not_16_digits_breaks_nik_format(value):
    refused(value, "nik_format")


@pytest.mark.parametrize("value", ["9972011708050001", "3699011708050001", "3672991708050001", "0000001708050001"])
def test_a_nik_of_no_known_district_breaks_nik_district(value):
    refused(value, "nik_district")


# day 0, 32, 40 (a man's 40, a woman's 0), a woman's 32; month 0, 13; 30 February, 31 April, a woman's both
@pytest.mark.parametrize("ddmm", ["0001", "3201", "4001", "7201", "1500", "1513", "3002", "7102", "3104", "7104",
                                  "0000"])
def test_a_nik_whose_date_is_no_date_breaks_nik_birth_date(ddmm):
    refused(f"367201{ddmm}850001", "nik_birth_date")
    refused(f"367201{ddmm}850001", "nik_birth_date", born=date(1985, 1, 1))


def test_29_february_of_a_year_that_never_was_leap_is_no_date():
    refused("3672012902010001", "nik_birth_date")  # neither 1901 nor 2001
    refused("3672016902010001", "nik_birth_date", born=date(2001, 3, 1))


def test_a_nik_of_another_province_is_valid_for_a_household_anywhere():
    assert read_nik("3171011708050001", TODAY).region == "317101"  # Jakarta Pusat, Gambir


def test_what_the_declaration_contradicts_is_flagged():
    facts = read_nik("3672011203800001", TODAY, born=date(1980, 3, 12))
    assert facts.quality_flags(date(1980, 3, 12), "M") == ()
    assert facts.quality_flags(date(1980, 3, 13), "M") == (NIK_BIRTH_DATE_MISMATCH,)
    assert facts.quality_flags(date(1980, 3, 12), "F") == (NIK_SEX_MISMATCH,)
    typo = read_nik("3672011203800001", TODAY, born=date(1908, 3, 12))
    assert typo.quality_flags(date(1908, 3, 12), "F") == (NIK_BIRTH_DATE_MISMATCH, NIK_SEX_MISMATCH)


def test_a_kk_needs_16_digits_a_known_district_and_a_real_issue_date():
    check_kk("3672010101200001", TODAY)
    for value, rule in [("367201010120000", "kk_format"), ("9972010101200001", "kk_district"),
                        ("3672013113200001", "kk_issue_date"), ("3672010013200001", "kk_issue_date")]:
        with pytest.raises(InvalidIdentifier) as error:
            check_kk(value, TODAY)
        assert error.value.rule == rule and value not in str(error.value)


# ---- properties ------------------------------------------------------------------------------------

districts = st.sampled_from(SORTED_DISTRICTS)
birth_dates = st.dates(date(1900, 1, 1), TODAY)
sexes = st.sampled_from("FM")
serials = st.integers(0, 9999)


@settings(max_examples=300)
@given(districts, birth_dates, sexes, serials)
def test_any_nik_of_a_real_district_and_a_past_date_is_read_back_exactly(district, born, sex, serial):
    value = nik(district, born, sex, serial)
    facts = read_nik(value, TODAY, born=born)
    assert (facts.region, facts.birth_date, facts.sex) == (district, born, sex)
    assert facts.quality_flags(born, sex) == ()


@settings(max_examples=300)
@given(districts, birth_dates, birth_dates, sexes, sexes)
def test_a_well_formed_nik_is_never_refused_for_what_the_family_declares(district, born, declared, sex, declared_sex):
    facts = read_nik(nik(district, born, sex), TODAY, born=declared)
    flags = facts.quality_flags(declared, declared_sex)
    same_date = (declared.day, declared.month, declared.year % 100) == (born.day, born.month, born.year % 100)
    assert (NIK_BIRTH_DATE_MISMATCH in flags) == (not same_date)
    assert (NIK_SEX_MISMATCH in flags) == (sex != declared_sex)


@settings(max_examples=300)
@given(st.from_regex(r"[0-9]{6}", fullmatch=True).filter(lambda d: d not in DISTRICTS), birth_dates, sexes)
def test_no_district_outside_the_tables_passes(district, born, sex):
    refused(nik(district, born, sex), "nik_district")


@settings(max_examples=300)
@given(districts, st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.one_of(st.none(), birth_dates))
def test_a_nik_date_is_refused_exactly_when_no_century_holds_it(district, dd, mm, yy, declared):
    value = f"{district}{dd:02d}{mm:02d}{yy:02d}0001"
    if possible(yy, mm, dd - 40 if dd > 40 else dd):
        assert read_nik(value, TODAY, born=declared).sex == ("F" if dd > 40 else "M")
    else:
        refused(value, "nik_birth_date", born=declared)


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=20), st.text(st.characters(categories=("Nd",)), min_size=16, max_size=16))
       .filter(lambda s: not (len(s) == 16 and s.isascii() and s.isdigit())))
def test_anything_but_16_ascii_digits_breaks_nik_format(value):
    with pytest.raises(InvalidIdentifier) as error:
        read_nik(value, TODAY)
    assert (error.value.rule, str(error.value)) == ("nik_format", "NIK must be 16 digits"), "a fixed reason, no echo"


@settings(max_examples=300)
@given(districts, st.dates(date(1960, 1, 1), TODAY), serials)
def test_any_kk_of_a_real_district_and_a_past_issue_date_passes(district, issued, serial):
    check_kk(f"{district}{issued:%d%m%y}{serial:04d}", TODAY)


@settings(max_examples=300)
@given(districts, st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))
def test_a_kk_issue_date_is_refused_exactly_when_it_is_no_date(district, dd, mm, yy):
    value = f"{district}{dd:02d}{mm:02d}{yy:02d}0001"
    if possible(yy, mm, dd):
        check_kk(value, TODAY)
    else:
        with pytest.raises(InvalidIdentifier) as error:
            check_kk(value, TODAY)
        assert error.value.rule == "kk_issue_date" and value not in str(error.value)


def test_tomorrow_s_birthday_of_a_newborn_is_last_century():
    tomorrow = TODAY + timedelta(days=1)
    value = nik("367201", tomorrow.replace(year=2026), "M")
    assert read_nik(value, TODAY).birth_date == tomorrow.replace(year=1926)


def _flags_or_rule(read) -> tuple[str, ...] | str:
    try:
        return read()
    except InvalidIdentifier as error:
        return error.rule


@settings(max_examples=500)
@given(st.one_of(districts, st.from_regex(r"[0-9]{6}", fullmatch=True)), st.integers(0, 99), st.integers(0, 99),
       st.integers(0, 99), birth_dates, sexes)
def test_the_import_s_quick_flags_are_read_nik_s(district, dd, mm, yy, declared, declared_sex):
    for value in (f"{district}{dd:02d}{mm:02d}{yy:02d}0001",
                  nik(district, declared, declared_sex), nik(district, declared, "F" if declared_sex == "M" else "M")):
        assert _flags_or_rule(lambda: quality_flags(value, declared, declared_sex, TODAY)) == _flags_or_rule(
            lambda: read_nik(value, TODAY, born=declared).quality_flags(declared, declared_sex))
