"""Per-agency pseudonyms: stable, unrelated between agencies, and telling nothing of the registry's id."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ejsika_notifications.pseudonyms import REFERENCE_PATTERN, PseudonymKeyError, Pseudonyms

KEY = Pseudonyms(b"a-key-of-the-service-that-is-long-enough")


@given(st.uuids())
def test_two_agencies_get_unrelated_references_for_the_same_family(household):
    education = KEY.reference_of("dinas-pendidikan", household)
    health = KEY.reference_of("dinas-kesehatan", household)
    assert education != health
    assert re.fullmatch(REFERENCE_PATTERN, education) and re.fullmatch(REFERENCE_PATTERN, health)
    assert education == KEY.reference_of("dinas-pendidikan", household), "stable"
    # nothing of the registry id shows, in any of its spellings
    for spelling in (household.hex, str(household), household.hex[:8], household.hex[-12:]):
        assert spelling not in education and spelling not in health


def test_references_depend_on_the_service_key_so_the_registry_id_alone_cannot_give_them():
    household = uuid.uuid4()
    other_key = Pseudonyms(b"another-key-of-another-deployment-0000")
    assert KEY.reference_of("dinas-pendidikan", household) != other_key.reference_of("dinas-pendidikan", household)


def test_a_family_and_a_member_with_the_same_id_get_different_references():
    same = uuid.uuid4()
    assert KEY.reference_of("dinas-pendidikan", same) != KEY.member_reference_of("dinas-pendidikan", same)


def test_references_do_not_collide_over_many_families():
    references = {KEY.reference_of("dinas-pendidikan", uuid.uuid4()) for _ in range(20_000)}
    assert len(references) == 20_000


def test_a_short_key_is_refused_without_showing_it():
    with pytest.raises(PseudonymKeyError) as refused:
        Pseudonyms(b"short-secret")
    assert "short-secret" not in str(refused.value)


def test_the_service_has_no_pseudonyms_without_its_key(monkeypatch):
    from ejsika_notifications.settings import NotificationsSettings

    monkeypatch.delenv("EJSIKA_PSEUDONYM_KEY", raising=False)
    with pytest.raises(PseudonymKeyError, match="EJSIKA_PSEUDONYM_KEY is not set"):
        NotificationsSettings().pseudonyms()
    monkeypatch.setenv("EJSIKA_PSEUDONYM_KEY", "k" * 40)
    assert NotificationsSettings().pseudonyms().reference_of("a", uuid.UUID(int=1)) == \
        Pseudonyms(b"k" * 40).reference_of("a", uuid.UUID(int=1))
