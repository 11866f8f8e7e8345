"""A family's changing membership: one head always, never an empty household, dates that have come,
a NIK once per household, and every refusal naming its field and rule, never a value."""

from datetime import date
from uuid import uuid4

import pytest

from ejsika_contracts import HouseholdMember
from ejsika_registry.domain import members as rules

TODAY = date(2026, 11, 28)
HEAD_NIK, SPOUSE_NIK, CHILD_NIK = "3672011203800001", "3672016005820003", "3672015508120002"


def stored(relation: str, nik: str | None, sex: str, born: str, **more) -> dict:
    """A member as `households.member_state` gives it."""
    return {"member_id": str(uuid4()), "nik": nik, "nik_status": "verified" if nik else "pending", "name": "X",
            "sex": sex, "birth_date": born, "relation": relation, "in_school": False, "pregnant": False,
            "disability": False, "quality_flags": [], **more}


@pytest.fixture
def family() -> dict[str, dict]:
    members = [stored("head", HEAD_NIK, "M", "1980-03-12"), stored("spouse", SPOUSE_NIK, "F", "1982-05-20"),
               stored("child", CHILD_NIK, "F", "2012-08-15")]
    return {m["member_id"]: m for m in members}


def ids(family: dict) -> tuple[str, str, str]:
    head, spouse, child = family
    return head, spouse, child


def rules_of(violations) -> set[tuple[str, str]]:
    text = repr(violations)
    assert HEAD_NIK not in text and SPOUSE_NIK not in text and CHILD_NIK not in text, "never a NIK in a refusal"
    return {(v.field, v.rule) for v in violations}


def newborn(**changes) -> HouseholdMember:
    data = {"member_id": uuid4(), "nik_status": "pending", "name": "Bayi", "sex": "F", "birth_date": date(2026, 11, 1),
            "relation": "child"}
    return HouseholdMember.model_validate({**data, **changes})


# Joining

def test_a_newborn_without_nik_joins_on_the_day_of_birth(family):
    flags, broken = rules.check_addition(newborn(), family, date(2026, 11, 1), TODAY)
    assert (flags, broken) == ((), [])


@pytest.mark.parametrize("changes, effective, expected", [
    ({"relation": "head"}, date(2026, 11, 1), ("member.relation", "one_head")),
    ({"nik_status": "verified", "nik": CHILD_NIK, "birth_date": date(2012, 8, 15)}, date(2026, 11, 1),
     ("member.nik", "nik_repeated")),
    ({}, date(2026, 11, 29), ("effective_date", "effective_date")),  # tomorrow
    ({}, date(2026, 10, 31), ("effective_date", "effective_date")),  # before the birth
    ({"sex": "M", "pregnant": True}, date(2026, 11, 1), ("member.pregnant", "pregnant_sex")),
    ({"birth_date": date(2026, 12, 1)}, date(2026, 11, 1), ("member.birth_date", "birth_date")),
])
def test_joining_refusals_name_their_field_and_rule(family, changes, effective, expected):
    _, broken = rules.check_addition(newborn(**changes), family, effective, TODAY)
    assert expected in rules_of(broken)


def test_a_nik_that_contradicts_the_declared_birth_date_is_flagged_not_refused(family):
    joining = newborn(nik_status="verified", nik="3672014101260004", birth_date=date(2026, 1, 2))  # NIK says 1 Jan
    flags, broken = rules.check_addition(joining, family, date(2026, 1, 2), TODAY)
    assert broken == [] and flags == ("nik_birth_date_mismatch",)


# Correcting

def test_a_pending_nik_given_later_makes_the_member_verified_and_is_checked(family):
    baby = stored("child", None, "F", "2026-11-01")
    member, broken = rules.corrected(baby, {"nik": "3672014111260004"}, {**family, baby["member_id"]: baby}, TODAY)
    assert broken == [] and member.nik_status == "verified" and member.quality_flags == ()
    member, broken = rules.corrected(baby, {"nik": "3672010211260004"}, family, TODAY)  # a boy's NIK, the 2nd
    assert broken == [] and set(member.quality_flags) == {"nik_birth_date_mismatch", "nik_sex_mismatch"}


def test_a_correction_keeps_what_it_does_not_name(family):
    _, _, child = ids(family)
    member, broken = rules.corrected(family[child], {"in_school": True}, family, TODAY)
    assert broken == []
    assert member.in_school and (member.nik, member.name, member.relation) == (CHILD_NIK, "X", "child")
    assert str(member.member_id) == child


@pytest.mark.parametrize("who, given, expected", [
    ("child", {"relation": "head"}, ("relation", "head_change")),
    ("head", {"relation": "parent"}, ("relation", "head_change")),
    ("child", {"nik": None}, ("nik_status", "nik_status")),  # a verified member's NIK removed, no status said
    ("child", {"nik_status": "pending"}, ("nik_status", "nik_status")),  # pending with a NIK
    ("child", {"nik": SPOUSE_NIK}, ("nik", "nik_repeated")),
    ("child", {"birth_date": date(2027, 1, 1)}, ("birth_date", "birth_date")),
    ("head", {"pregnant": True}, ("pregnant", "pregnant_sex")),
])
def test_correction_refusals_name_their_field_and_rule(family, who, given, expected):
    head, _, child = ids(family)
    member, broken = rules.corrected(family[head if who == "head" else child], given, family, TODAY)
    assert member is None and expected in rules_of(broken)


def test_a_wrong_nik_is_removed_with_its_status(family):
    _, _, child = ids(family)
    member, broken = rules.corrected(family[child], {"nik": None, "nik_status": "unmatched"}, family, TODAY)
    assert broken == [] and member.nik is None and member.nik_status == "unmatched"


# Leaving, moving

def test_a_member_other_than_the_head_may_leave(family):
    _, spouse, _ = ids(family)
    assert rules.check_end(spouse, family, TODAY, TODAY) == []


def test_the_head_leaves_only_after_a_head_change_and_the_last_member_never(family):
    head, spouse, child = ids(family)
    assert rules_of(rules.check_end(head, family, TODAY, TODAY)) == {("member_id", "head_ends")}
    alone = {head: family[head]}
    assert rules_of(rules.check_end(head, alone, TODAY, TODAY)) == {("member_id", "last_member")}


@pytest.mark.parametrize("effective", [date(2026, 11, 29), date(2012, 8, 14)])
def test_an_end_takes_effect_between_the_birth_and_today(family, effective):
    _, _, child = ids(family)
    assert rules_of(rules.check_end(child, family, effective, TODAY)) == {("effective_date", "effective_date")}


def test_a_member_moves_in_as_a_head_only_where_there_is_none(family):
    _, spouse, _ = ids(family)
    target = {m["member_id"]: m for m in [stored("head", "3672011203700009", "M", "1970-03-12")]}
    assert rules_of(rules.check_move(spouse, family, target, "head", TODAY, TODAY)) == {("relation", "one_head")}
    assert rules.check_move(spouse, family, target, "spouse", TODAY, TODAY) == []


# A new head

def test_a_head_change_names_every_relation_that_changes(family):
    head, spouse, child = ids(family)
    change, broken = rules.check_head_change(family, spouse, [(head, "spouse"), (child, "child")])
    assert broken == []
    assert change.previous_head == head
    assert change.relations == {spouse: "head", head: "spouse"}, "the child's relation did not change"


@pytest.mark.parametrize("new_head, relations, expected", [
    ("spouse", [("child", "other")], ("relations", "head_relation")),  # the old head's relation unsaid
    ("head", [("spouse", "other")], ("member_id", "head")),
    ("stranger", [("head", "other")], ("member_id", "member")),
    ("spouse", [("head", "head")], ("relations[0].relation", "one_head")),
    ("spouse", [("head", "other"), ("spouse", "other")], ("relations[1].member_id", "member")),
    ("spouse", [("head", "other"), ("head", "parent")], ("relations[1].member_id", "repeated")),
])
def test_head_change_refusals(family, new_head, relations, expected):
    by_name = dict(zip(("head", "spouse", "child"), ids(family)), stranger=str(uuid4()))
    change, broken = rules.check_head_change(family, by_name[new_head], [(by_name[m], r) for m, r in relations])
    assert change is None and expected in rules_of(broken)


# A split

def test_a_split_puts_the_new_head_first_and_keeps_unnamed_relations(family):
    head, spouse, child = ids(family)
    placed, broken = rules.check_split(family, [spouse, child], child, [])
    assert broken == []
    assert placed == [(1, child, "head"), (0, spouse, "spouse")]
    placed, _ = rules.check_split(family, [spouse, child], child, [(spouse, "parent")])
    assert placed == [(1, child, "head"), (0, spouse, "parent")]


@pytest.mark.parametrize("leaving, new_head, relations, expected", [
    (["head"], "head", [], ("member_ids[0]", "head_ends")),
    (["spouse", "child"], "head", [], ("member_id", "member")),
    (["spouse", "spouse"], "spouse", [], ("member_ids[1]", "repeated")),
    (["stranger"], "stranger", [], ("member_ids[0]", "member")),
    (["spouse", "child"], "spouse", [("child", "head")], ("relations[0].relation", "one_head")),
    (["spouse"], "spouse", [("child", "child")], ("relations[0].member_id", "member")),
])
def test_split_refusals(family, leaving, new_head, relations, expected):
    by_name = dict(zip(("head", "spouse", "child"), ids(family)), stranger=str(uuid4()))
    placed, broken = rules.check_split(family, [by_name[m] for m in leaving], by_name[new_head],
                                       [(by_name[m], r) for m, r in relations])
    assert placed == [] and expected in rules_of(broken)


def test_a_split_leaves_someone_behind(family):
    head, spouse, child = ids(family)
    without_head = {spouse: family[spouse], child: family[child]}  # a household whose head already left
    _, broken = rules.check_split(without_head, [spouse, child], spouse, [])
    assert ("member_ids", "split_all") in rules_of(broken)
