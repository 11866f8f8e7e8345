"""The enrolment lifecycle: which steps exist, what an exit needs, exclusivity, and the exit a decision recommends."""

from datetime import date, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from ejsika_registry.domain.enrolment import (
    EXIT_KINDS, HELD, STATUSES, TRANSITIONS, Enrolment, TransitionRefused, Wanted, candidate, invariant_violations,
    recommendation_reason, recommended_exit, transition,
)

TODAY = date(2026, 11, 28)
EARLIER = date(2026, 11, 1)


def _at(status, programme="jscm", **fields):
    fields.setdefault("effective_date", EARLIER)
    if status == "exited":
        fields.setdefault("exit_kind", "mandiri")
        fields.setdefault("reason", "declared able")
    return Enrolment(programme, status, **fields)


def _refusal(current, wanted, others=(), programme="jscm"):
    with pytest.raises(TransitionRefused) as refused:
        transition(current, programme, wanted, list(others), TODAY)
    return refused.value


ALLOWED = [(before, after) for before, afters in TRANSITIONS.items() for after in afters]
REFUSED = [(before, after) for before in (None, *STATUSES) for after in STATUSES if after not in TRANSITIONS[before]]


def test_the_lifecycle_is_the_one_of_the_issue():
    assert set(ALLOWED) == {(None, "candidate"), ("candidate", "active"), ("candidate", "exited"),
                            ("active", "suspended"), ("suspended", "active"), ("active", "exited"),
                            ("suspended", "exited"), ("exited", "candidate")}


@pytest.mark.parametrize(("before", "after"), ALLOWED)
def test_every_allowed_step_happens(before, after):
    current = _at(before) if before else None
    wanted = Wanted(after, "alamiah", "no component left", TODAY) if after == "exited" else Wanted(after)
    moved = transition(current, "jscm", wanted, [], TODAY)
    assert moved.status == after and moved.effective_date == TODAY
    assert (moved.exit_kind == "alamiah") == (after == "exited")


@pytest.mark.parametrize(("before", "after"), REFUSED)
def test_every_other_step_is_a_conflict_with_the_current_status(before, after):
    wanted = Wanted(after, "paksa", "x", TODAY) if after == "exited" else Wanted(after)
    refused = _refusal(_at(before) if before else None, wanted)
    assert (refused.field, refused.rule, refused.conflict) == ("status", "enrolment_transition", True)


def test_an_exit_needs_its_kind_its_reason_and_its_day():
    active = _at("active")
    assert _refusal(active, Wanted("exited", None, "able", TODAY)).rule == "exit_kind"
    assert _refusal(active, Wanted("exited", "mandiri", None, TODAY)).rule == "reason"
    assert _refusal(active, Wanted("exited", "mandiri", "able", None)).field == "effective_date"
    refused = _refusal(active, Wanted("exited", "mandiri", "able", TODAY + timedelta(days=1)))
    assert (refused.rule, refused.conflict) == ("effective_date", False)
    exited = transition(active, "jscm", Wanted("exited", "mandiri", "able", EARLIER), [], TODAY)
    assert (exited.exit_kind, exited.reason, exited.effective_date) == ("mandiri", "able", EARLIER)


def test_only_an_exit_has_a_kind_and_no_step_goes_back_in_time():
    assert _refusal(_at("active"), Wanted("suspended", exit_kind="paksa")).rule == "exit_kind"
    assert _refusal(_at("active"), Wanted("suspended", effective_date=EARLIER - timedelta(days=1))).rule == \
        "effective_date"
    assert _refusal(_at("candidate"), Wanted("active", effective_date=TODAY + timedelta(days=1))).rule == \
        "effective_date"


def test_a_re_entered_family_starts_afresh_without_its_old_exit():
    again = transition(_at("exited"), "jscm", Wanted("candidate", reason="surveyed again"), [], TODAY)
    assert (again.status, again.exit_kind, again.reason) == ("candidate", None, "surveyed again")


@pytest.mark.parametrize("held", sorted(HELD))
def test_a_family_holding_a_place_in_an_exclusive_programme_is_not_activated(held):
    other = _at(held, programme="jamsosratu")
    for current in (_at("candidate"), _at("suspended")):
        refused = _refusal(current, Wanted("active"), [other])
        assert (refused.rule, refused.conflict) == ("programme_exclusive", True)
    # a candidacy, a suspension or an exit is not a second place
    assert transition(None, "jscm", Wanted("candidate"), [other], TODAY).status == "candidate"
    assert transition(_at("active"), "jscm", Wanted("suspended"), [other], TODAY).status == "suspended"


@pytest.mark.parametrize("left", ["candidate", "exited"])
def test_a_family_that_only_is_a_candidate_or_left_elsewhere_is_activated(left):
    moved = transition(_at("candidate"), "jscm", Wanted("active"), [_at(left, programme="jamsosratu")], TODAY)
    assert moved.status == "active"


def test_no_message_repeats_what_was_sent():
    reason = "x" * 501
    refused = _refusal(_at("active"), Wanted("suspended", reason=reason))
    assert refused.rule == "reason" and reason not in str(refused)


def test_a_decision_recommends_the_exit_kind_the_domain_gives_and_never_for_an_eligible_family():
    assert recommended_exit(True, []) is None and recommended_exit(True, ["toddler"]) is None
    assert recommended_exit(False, []) == "alamiah"  # no eligible component left
    assert recommended_exit(False, ["school_child"]) == "paksa"  # components remain: certified able
    assert "starter-v1" in recommendation_reason("paksa", "starter-v1", 12.5)
    assert len(recommendation_reason("alamiah", "r" * 600, 0)) <= 500


# The property: whatever steps are tried, in any order, over both programmes, the household's enrolments
# keep their invariants (an exit has its kind and reason, only an exit has a kind, no two exclusive
# programmes held at once, no day going backwards, only the transitions of the table).
PROGRAMME = st.sampled_from(["jamsosratu", "jscm"])
REASON = st.sampled_from(["able", "moved away", "no component"])
DAYS_BACK = st.integers(min_value=0, max_value=5)
# Mostly steps an author would send (an exit with its kind, reason and day), some with anything at all.
STEP = st.one_of(
    st.tuples(PROGRAMME, st.sampled_from(["candidate", "active", "suspended"]), st.none(),
              st.one_of(st.none(), REASON), st.none()),
    st.tuples(PROGRAMME, st.just("exited"), st.sampled_from(EXIT_KINDS), REASON, DAYS_BACK),
    st.tuples(PROGRAMME, st.sampled_from(STATUSES), st.one_of(st.none(), st.sampled_from(EXIT_KINDS)),
              st.one_of(st.none(), REASON), st.one_of(st.none(), DAYS_BACK)),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEP, max_size=40))
def test_any_sequence_of_steps_keeps_the_invariants(steps):
    start = date(2026, 1, 1)
    enrolments = {"jscm": candidate("jscm", start)}
    for day, (programme, status, kind, reason, days) in enumerate(steps, start=1):
        today = start + timedelta(days=day)
        current = enrolments.get(programme)
        others = [e for code, e in enrolments.items() if code != programme]
        effective = None if days is None else today - timedelta(days=days)
        try:
            moved = transition(current, programme, Wanted(status, kind, reason, effective), others, today)
        except TransitionRefused as refused:
            assert refused.rule in ("enrolment_transition", "programme_exclusive", "exit_kind", "reason",
                                    "effective_date")
            continue
        assert status in TRANSITIONS[current.status if current else None]
        assert current is None or moved.effective_date >= current.effective_date
        assert moved.effective_date <= today
        enrolments[programme] = moved
        assert invariant_violations(enrolments) == []
    assert invariant_violations(enrolments) == []


def test_the_invariants_catch_what_no_transition_makes():
    broken = {"jscm": _at("active"), "jamsosratu": _at("suspended", programme="jamsosratu")}
    assert invariant_violations(broken) == ["jscm and jamsosratu exclude each other and both are held"]
    assert invariant_violations({"jscm": Enrolment("jscm", "active", EARLIER, exit_kind="paksa")})
    assert invariant_violations({"jscm": Enrolment("jscm", "exited", EARLIER, exit_kind="paksa")})  # no reason
