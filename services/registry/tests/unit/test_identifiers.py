from datetime import date

import pytest

from ejsika_registry.domain.identifiers import InvalidIdentifier, check_kk, read_nik

TODAY = date(2026, 11, 28)


def test_a_woman_s_nik_carries_her_birth_day_plus_forty():
    facts = read_nik("3672015508120002", TODAY)
    assert (facts.sex, facts.birth_date, facts.region) == ("F", date(2012, 8, 15), "367201")


def test_the_two_digit_year_is_resolved_against_today():
    assert read_nik("3672011708050001", TODAY).birth_date == date(2005, 8, 17)
    assert read_nik("3672011708300001", TODAY).birth_date == date(1930, 8, 17)
    assert read_nik("3672011712260001", date(2026, 11, 28)).birth_date == date(1926, 12, 17)


@pytest.mark.parametrize("value", ["367201120380000", "36720112038000011", "3672013203800001", "36720112AB800001"])
def test_malformed_niks_are_rejected_without_echoing_them(value):
    with pytest.raises(InvalidIdentifier) as error:
        read_nik(value, TODAY)
    assert value not in str(error.value)


def test_kk_needs_a_real_issue_date():
    check_kk("3672010101200001", TODAY)
    with pytest.raises(InvalidIdentifier):
        check_kk("3672013113200001", TODAY)


def test_a_nik_from_an_unknown_regency_is_rejected():
    with pytest.raises(InvalidIdentifier, match="province or regency"):
        read_nik("9972011708050001", TODAY)
    assert read_nik("3672011708050001", TODAY).region == "367201"
