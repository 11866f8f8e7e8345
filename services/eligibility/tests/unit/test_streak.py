"""The run towards mandiri counts welfare observations, so the order in which the registry's and the
visits' topics are read (live, a replay) and the passing of time do not change it (pure)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ejsika_eligibility.decisions import Stored, decide
from ejsika_eligibility.domain.assessment import AssessmentInputs, Standing, prior_high
from ejsika_eligibility.domain.inputs import assessments, fold, inputs_of
from ejsika_eligibility.domain.rules import INDICATORS, defaults
from ejsika_runtime.programme_time import programme_date

from ..family_events import POOR, Family, member

RULES = next(r for r in defaults() if r.programme == "jamsosratu")
HIGH = {**{name: False for name, numeric in INDICATORS.items() if not numeric},
        "floor_area_per_person_m2": 30.0, "installed_power_va": 2200}  # desil 10
ALSO_HIGH = {**HIGH, "installed_power_va": 1300}  # another survey, still desil 10


def standing(rule_version=RULES.version, welfare_version=3, desil=10, prior=1) -> Standing:
    return Standing(rule_version, welfare_version, desil, prior)


def test_the_run_moves_only_with_a_newer_welfare_observation():
    assert prior_high(None, 1, RULES) == 0
    assert prior_high(standing(), 3, RULES) == 1  # the same observation (a visit, a birthday): kept
    assert prior_high(standing(), 4, RULES) == 2  # a newer one after a high one: one more
    assert prior_high(standing(desil=3), 4, RULES) == 0  # after a low one: starts again
    assert prior_high(standing(desil=None), 4, RULES) == 0  # after insufficient data: starts again
    assert prior_high(standing(desil=3, prior=0), 3, RULES) == 0


def test_another_rule_version_starts_the_run_from_the_observation_at_hand():
    assert prior_high(standing(rule_version=RULES.version + 1, prior=2), 3, RULES) == 0
    assert prior_high(standing(rule_version=RULES.version + 1, prior=2), 4, RULES) == 0


class Story:
    """A family whose pupil's schooling visits keep changing its inputs, and its registry events."""

    def __init__(self, first_welfare: dict, later: list[dict]) -> None:
        self.family = family = Family()
        self.pupil = member("child", "2014-02-01", in_school=True)
        toddler = member("child", "2023-05-01")  # early childhood: a component throughout, never alamiah
        self.registry = [family.registered([member("head", "1975-04-01"), self.pupil, toddler], welfare=first_welfare),
                         family.enrolment("candidate", None), family.enrolment("active", "candidate")]
        self.registry += [family.updated(welfare=w) for w in later]
        family.clock += timedelta(days=3)  # the visits are captured after the registry's events
        self.visits = [family.visit(school=[(self.pupil["member_id"], i % 2 == 1)]) for i in range(4)]


def read(batches: list[list]) -> tuple[Stored | None, int]:
    """Fold the batches in the order read and decide as the consumer does; the decision in force and
    how many decisions were made."""
    facts, stored, made = {}, None, 0
    for batch in batches:
        folded = fold(facts, batch)
        for round_ in assessments(facts, folded):
            for _, cause, after in round_:
                inputs = AssessmentInputs.model_validate_json(inputs_of(after).model_dump_json())
                new = decide(inputs, RULES, programme_date(cause.time), after.enrolment_status == "active", stored)
                if new is not None:
                    decision, context, _ = new
                    stored = Stored(decision.rule_version, decision.status, decision.desil,
                                    tuple(decision.components), decision.yearly_amount, decision.graduation,
                                    (decision.proposed_exit or {}).get("kind"), context.prior_high,
                                    decision.fingerprint, inputs.welfare_version, decision.region_code)
                    made += 1
        facts = folded.facts
    return stored, made


def merged(first: list, second: list, picks: list[bool]) -> list:
    """The two topics' events in one order that keeps each topic's own order."""
    a, b, out = list(first), list(second), []
    for pick in picks:
        if pick and a:
            out.append(a.pop(0))
        elif b:
            out.append(b.pop(0))
    return out + a + b


def test_three_high_observations_make_a_mandiri_candidate_whatever_the_visits_in_between():
    f = Story(HIGH, [ALSO_HIGH, HIGH])
    registry_first, n_first = read([[e] for e in f.registry + f.visits])
    visits_between, n_between = read([[e] for e in merged(f.registry, f.visits, [True, False] * 10)])
    # registration, activation (a candidate decides as before), two updates, four visits
    assert n_first == n_between == 8
    for stored in (registry_first, visits_between):
        assert stored.prior_high == 2 and stored.graduation == "mandiri" and stored.proposed_exit == "mandiri"
    assert registry_first.fingerprint == visits_between.fingerprint


def test_visits_after_a_single_high_observation_do_not_make_a_run():
    # poor at registration, prosperous once since: one high observation, however many decisions follow
    f = Story(POOR, [HIGH])
    stored, made = read([[e] for e in f.registry + f.visits])
    assert made > RULES.graduation.consecutive
    assert stored.desil == 10 and stored.prior_high == 0 and stored.graduation is None


def test_a_low_observation_breaks_the_run():
    f = Story(HIGH, [HIGH, POOR, HIGH])
    stored, _ = read([[e] for e in merged(f.registry, f.visits, [False, True] * 10)])
    assert stored.desil == 10 and stored.prior_high == 0 and stored.graduation is None


@settings(max_examples=60, deadline=None)
@given(picks=st.lists(st.booleans(), max_size=16), later=st.lists(st.sampled_from(["high", "also_high", "poor"]),
                                                                   min_size=1, max_size=4),
       first_high=st.booleans(), replay_batches=st.booleans())
def test_any_interleaving_and_batching_of_visits_gives_the_live_run(picks, later, first_high, replay_batches):
    welfare = {"high": HIGH, "also_high": ALSO_HIGH, "poor": POOR}
    f = Story(HIGH if first_high else POOR, [welfare[w] for w in later])
    live, _ = read([[e] for e in merged(f.registry, f.visits, picks)])
    # a replay: each topic read whole in one batch, the visits first or last
    replay, _ = read([f.visits, f.registry] if replay_batches else [f.registry, f.visits])
    assert (replay.prior_high, replay.graduation, replay.proposed_exit, replay.fingerprint) == (
        live.prior_high, live.graduation, live.proposed_exit, live.fingerprint)
    # and the run is the one the welfare observations alone give
    observations = [first_high] + [w != "poor" for w in later]
    run = 0
    for high in observations[:-1]:
        run = run + 1 if high else 0
    assert live.prior_high == run


def test_the_passing_of_time_keeps_the_run():
    f = Story(HIGH, [HIGH])
    stored, _ = read([[e] for e in f.registry])
    assert stored.prior_high == 1
    facts = fold({}, f.registry).facts[f.family.id]
    inputs = AssessmentInputs.model_validate_json(inputs_of(facts).model_dump_json())
    # the pupil turns 13 (SD to SMP): the daily review decides again, on the same welfare observation
    new = decide(inputs, RULES, date(2027, 2, 1), True, stored)
    assert new is not None
    decision, context, _ = new
    assert context.prior_high == 1 and decision.graduation is None
    assert decision.components != list(stored.components)


def test_a_move_alone_is_decided_again_in_its_new_village_whatever_came_before():
    # the region decides nothing (not in the fingerprint) but the decision in force is counted in it
    f = Story(POOR, [])
    moved = f.family.updated(region_code="3672021002")
    for order in ([*f.registry, moved, *f.visits], [*f.registry, *f.visits, moved]):
        stored, _ = read([[e] for e in order])
        assert stored.region_code == "3672021002"
