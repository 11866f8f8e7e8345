"""The assessment over columns equals the assessment of each household, on random households."""

import json
import random
import re
import uuid
from datetime import date, timedelta
from pathlib import Path

import numpy as np

import ejsika_eligibility

from ejsika_contracts import EligibilityAssessed
from ejsika_eligibility.domain.assessment import AssessmentInputs, Context, age_on, assess
from ejsika_eligibility.domain import announcements
from ejsika_eligibility.domain.announcements import random_uuids
from ejsika_eligibility.domain.columns import (EXITS, GRADUATIONS, SEXES, STATUSES, Households, ages_on,
                                               benefit_columns, decide, score_columns)
from ejsika_eligibility.domain.rules import INDICATORS, defaults

TODAY = date(2026, 2, 28)
RULES = list(defaults())


def random_household(rng: random.Random) -> dict:
    welfare = {}
    for name, numeric in INDICATORS.items():
        if rng.random() < 0.15:
            welfare[name] = None
        elif name == "installed_power_va":
            welfare[name] = rng.choice([0, 450, 451, 900, 901, 1300, 2200])
        elif numeric:
            welfare[name] = rng.choice([0.0, 7.99, 8.0, 11.5, 12.0, rng.uniform(0, 40)])
        else:
            welfare[name] = rng.random() < 0.6
    members = []
    for _ in range(rng.randint(1, 8)):
        born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 31_000))
        if rng.random() < 0.05:
            born = date(2012, 2, 29)  # a leap-day birthday, 14 on 1 March
        members.append({"member_id": str(uuid.UUID(int=rng.getrandbits(128))) if rng.random() < 0.9 else None,
                        "sex": rng.choice(("F", "M", None)), "birth_date": born.isoformat(), "relation": "other",
                        "in_school": rng.random() < 0.5, "pregnant": rng.random() < 0.1,
                        "disability": rng.random() < 0.1})
    escalation = rng.choice([{"kind": "school_dropout_risk", "period": "2026-01-31"},
                             {"kind": "no_antenatal_care", "reason": "no visit to the \"posyandu\" since May"}]
                            ) if rng.random() < 0.1 else None
    return {"household_id": str(uuid.UUID(int=rng.getrandbits(128))), "programme": "jamsosratu",
            "region_code": "3601011001", "welfare": welfare, "welfare_version": rng.randint(1, 9), "members": members,
            "escalation": escalation}


def test_columns_score_desil_status_and_benefits_equal_the_scalar_assessment():
    rng = random.Random(9)
    households = [AssessmentInputs.model_validate(random_household(rng)) for _ in range(2_000)]
    for rules in RULES:
        frame = {name: np.array([h.welfare.get(name) for h in households], dtype=float) for name in rules.order}
        members = [(i, m) for i, h in enumerate(households) for m in h.members]
        earned = benefit_columns(rules, len(households), {
            "household": [i for i, _ in members],
            "birth_date": np.array([m.birth_date for _, m in members], dtype="datetime64[D]"),
            "in_school": [m.in_school for _, m in members], "pregnant": [m.pregnant for _, m in members],
            "disability": [m.disability for _, m in members], "sex": [m.sex for _, m in members]}, TODAY)
        scores = score_columns(frame, rules, earned.count)
        names = [c.name for c in rules.components]
        for i, household in enumerate(households):
            decision = assess(household, rules, TODAY)
            assert scores.score[i] == decision.score
            assert (scores.desil[i] or None) == decision.desil
            assert STATUSES[scores.status[i]] == decision.status
            assert earned.amount[i] == decision.yearly_amount
            kept = earned.household == i
            assert [names[c] for c in earned.component[kept]] == decision.components


def as_columns(households: list[AssessmentInputs]) -> Households:
    """Households as the bulk reader gives them (`household_columns.read`)."""
    members = [(i, m) for i, h in enumerate(households) for m in h.members]
    return Households(
        ids=np.array([h.household_id.bytes for h in households], dtype="S16"),
        active=np.array([i % 2 == 0 for i in range(len(households))]),
        escalation=np.array([h.escalation.kind if h.escalation else None for h in households], dtype=object),
        welfare_version=np.array([h.welfare_version for h in households], dtype=np.int64),
        welfare={name: np.array([h.welfare.get(name) for h in households], dtype=float) for name in INDICATORS},
        member_household=np.array([i for i, _ in members], dtype=np.int64),
        member_id=np.array([m.member_id.bytes if m.member_id else b"" for _, m in members], dtype="S16"),
        member_has_id=np.array([m.member_id is not None for _, m in members]),
        birth_date=np.array([m.birth_date for _, m in members], dtype="datetime64[D]"),
        sex=np.array([SEXES.index(m.sex) for _, m in members], dtype=np.int8),
        in_school=np.array([m.in_school for _, m in members]), pregnant=np.array([m.pregnant for _, m in members]),
        disability=np.array([m.disability for _, m in members]))


def bulk(count: int, seed: int) -> tuple[list[AssessmentInputs], Households, np.ndarray]:
    rng = random.Random(seed)
    raw = [random_household(rng) for _ in range(count)]
    raw.sort(key=lambda h: uuid.UUID(h["household_id"]))
    households = [AssessmentInputs.model_validate(h) for h in raw]
    return households, as_columns(households), np.arange(count) % 4


def test_the_bulk_decisions_of_a_rule_change_equal_the_scalar_ones_fingerprint_included():
    households, frame, prior = bulk(1_000, 11)
    for rules in RULES:
        decided = decide(frame, rules, TODAY, prior)
        for i, household in enumerate(households):
            decision = assess(household, rules, TODAY, Context(int(prior[i]), bool(frame.active[i])))
            assert decided.fingerprint[i] == decision.fingerprint
            assert (STATUSES[decided.scores.status[i]], int(decided.scores.desil[i]) or None,
                    decided.component_lists[decided.components[i]], int(decided.benefits.amount[i])) == (
                decision.status, decision.desil, ",".join(decision.components), decision.yearly_amount)
            assert GRADUATIONS[decided.graduation[i]] == decision.graduation
            assert EXITS[decided.exit[i]] == (decision.proposed_exit or {}).get("kind")
            assert decided.missing_lists[decided.missing[i]] == ",".join(decision.missing)
        assert {GRADUATIONS[g] for g in decided.graduation} >= {"mandiri", "alamiah", None}
        assert "paksa" in {EXITS[x] for x in decided.exit}


def test_the_events_written_from_columns_are_the_contract_and_equal_those_of_assess():
    households, frame, prior = bulk(600, 12)
    rules = RULES[0]
    decided = decide(frame, rules, TODAY, prior)
    rows = np.arange(0, len(households), 2)  # the announced ones
    escalations = {i: households[i].escalation for i in rows.tolist() if EXITS[decided.exit[i]] == "paksa"}
    assert escalations
    event_ids, correlation_ids = random_uuids(len(rows)), random_uuids(len(rows))
    told = announcements.told(frame, decided, rules, rows, [households[i].region_code for i in rows], escalations,
                              event_ids, correlation_ids)
    for k, i in enumerate(rows.tolist()):
        event = EligibilityAssessed.model_validate_json(told.events[k])  # strict: an unknown field would fail
        decision = assess(households[i], rules, TODAY, Context(int(prior[i]), bool(frame.active[i])))
        assert event.data == decision.event_data()
        assert (event.id.bytes, event.correlation_id.bytes) == (bytes(event_ids[k]), bytes(correlation_ids[k]))
        assert event.subject == str(households[i].household_id) and event.causation_id is None
        assert json.loads(told.explanation[k]) == json.loads(event.data.model_dump_json())["explanation"]
        assert json.loads(told.benefits[k]) == json.loads(event.data.model_dump_json())["benefits"]
        assert (json.loads(told.proposed_exit[k]) if told.proposed_exit[k] else None) == decision.proposed_exit


def test_the_packed_inputs_of_migration_009_list_the_indicators_as_the_rules_know_them():
    sql = (Path(ejsika_eligibility.__file__).parent / "migrations" / "009_assessed_columns.sql").read_text()
    packed = re.findall(r"float8send\(coalesce\(w\.(\w+)(::int::float8)?, 'NaN'\)\)", sql)
    assert [(name, not boolean) for name, boolean in packed] == list(INDICATORS.items())


def test_ages_looked_up_by_day_are_those_counted_per_member_leap_days_included():
    today = date(2027, 2, 28)  # the day before a 29 February birthday is kept, in a year without one
    days = np.array(["2020-02-29", "2019-03-01", "2019-02-28", "1936-12-31", "2027-02-28", "2000-01-01"],
                    dtype="datetime64[D]")
    rng = np.random.default_rng(5)
    days = np.concatenate([days, np.datetime64("1930-01-01") + rng.integers(0, 35_000, 5_000)])
    ages = ages_on(days, today)
    assert ages.dtype == np.int32
    assert ages.tolist() == [age_on(d, today) for d in days.astype(object)]
    # birth dates too far apart to tabulate are counted one by one, alike
    far = np.array(["1200-06-01", "2020-02-29", "2026-03-01"], dtype="datetime64[D]")
    assert ages_on(far, today).tolist() == [age_on(d, today) for d in far.astype(object)]
    assert ages_on(np.zeros(0, dtype="datetime64[D]"), today).tolist() == []
