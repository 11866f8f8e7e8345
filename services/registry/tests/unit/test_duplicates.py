"""Likely duplicates: names compared as BNBA lists write them, pairs spelled one way, merges that keep
one of the pair."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from ejsika_registry.domain.duplicates import (
    DEFAULT_THRESHOLD, Member, Undecidable, candidate, candidates, kept_and_ended, name_similarity, normal_name,
)


@pytest.mark.parametrize(("written", "normal"), [
    ("MAWARDI.Z", "MAWARDI Z"),
    ("  siti   aminah ", "SITI AMINAH"),
    ("M. Yusuf, S.Pd", "M YUSUF S PD"),
    ("Nur'aini", "NUR AINI"),
    ("Élis Suryani", "ELIS SURYANI"),
    ("...", ""),
])
def test_a_name_is_normalised_to_upper_case_words_without_punctuation(written, normal):
    assert normal_name(written) == normal


@pytest.mark.parametrize(("a", "b"), [
    ("MAWARDI.Z", "MAWARDI ZAINAL"),  # an initial for the second name
    ("M. YUSUF", "MUHAMMAD YUSUF"),  # an initial for the first name
    ("SITI AMINAH", "SITI AMINA"),  # a letter dropped
    ("AHMAD SUHENDI", "suhendi, ahmad"),  # the words swapped, another case
    ("NURHAYATI", "NUR HAYATI"),  # written as one word or two
])
def test_the_same_person_written_another_way_is_similar_enough(a, b):
    assert name_similarity(a, b).score >= DEFAULT_THRESHOLD
    assert name_similarity(a, b) == name_similarity(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("BUDI SANTOSO", "DEWI SANTOSO"),  # siblings share a family name
    ("SITI AMINAH", "SUTINAH"),
    ("SITI", "SITI AMINAH"),  # a first name alone is too little
    ("ASEP", "UJANG"),
    ("", "ASEP"),
])
def test_other_people_are_not(a, b):
    assert name_similarity(a, b).score < DEFAULT_THRESHOLD


def test_an_initial_is_read_as_one_word_of_the_other_name_only():
    assert name_similarity("MAWARDI Z", "MAWARDI ZAINAL").initials_expanded
    assert not name_similarity("SITI AMINAH", "SITI AMINA").initials_expanded
    # a name of initials only says too little to stand for any name
    assert name_similarity("A", "AHMAD").score < DEFAULT_THRESHOLD
    assert name_similarity("A S", "AHMAD SUHENDI").score < DEFAULT_THRESHOLD
    # each word of the other name stands for one initial at most
    assert name_similarity("SITI A A", "SITI AMINAH").score < name_similarity("SITI A", "SITI AMINAH").score


def member(name: str, household: UUID | None = None, nik: bool = True, member_id: UUID | None = None) -> Member:
    return Member(member_id or uuid4(), household or uuid4(), name, nik)


def test_a_pair_is_spelled_one_way_whichever_side_found_it():
    one, other = member("MAWARDI.Z", nik=False), member("MAWARDI ZAINAL")
    first, second = candidate(one, other), candidate(other, one)
    assert first == second
    assert first.a.member_id < first.b.member_id
    assert first.reasons == ("same_birth_date", "same_kecamatan", "similar_names", "initials_expanded", "nik_missing")
    assert first.score == 1.0


def test_two_different_niks_are_said_so():
    pair = candidate(member("SITI AMINAH"), member("SITI AMINA"))
    assert pair.reasons[-1] == "nik_differs" and "initials_expanded" not in pair.reasons
    assert 0.85 <= pair.score < 1


def test_no_pair_of_a_household_with_itself_or_below_the_threshold():
    household = uuid4()
    assert candidate(member("SITI AMINAH", household), member("SITI AMINA", household)) is None
    assert candidate(member("BUDI SANTOSO"), member("DEWI SANTOSO")) is None
    assert candidate(member("BUDI SANTOSO"), member("DEWI SANTOSO"), threshold=0.8) is not None


def test_candidates_keeps_each_pair_once():
    one, other, third = member("SITI AMINAH"), member("SITI AMINA"), member("ASEP")
    found = candidates([(one, other), (other, one), (one, third)])
    assert len(found) == 1
    assert {found[0].a.member_id, found[0].b.member_id} == {one.member_id, other.member_id}


def test_a_merge_keeps_one_of_the_pair_and_ends_the_other():
    a, b = uuid4(), uuid4()
    assert kept_and_ended(a, b, a) == (a, b)
    assert kept_and_ended(a, b, b) == (b, a)
    with pytest.raises(Undecidable) as refused:
        kept_and_ended(a, b, uuid4())
    assert (refused.value.field, refused.value.rule) == ("keep_member_id", "pair_member")
