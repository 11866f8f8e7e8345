"""Ranking, ties, allocation within families and budget, and the share of each funder (pure)."""

from __future__ import annotations

import random
from datetime import date
from uuid import UUID

import numpy as np
import pytest

from ejsika_eligibility.domain.quotas import (
    Candidate, Funder, FundersRefused, Quota, Usage, allocate, check_funders, ranked, room, split,
)
from ejsika_eligibility.domain.what_if import Snapshot, place

SHARED = (Funder("apbd-provinsi-banten", 0.6), Funder("apbd-kab-pandeglang", 0.4))


def uid(n: int) -> UUID:
    return UUID(int=n)


def candidate(n: int, score: float, day: date = date(2026, 1, 5), amount: int = 1_000_000) -> Candidate:
    return Candidate(uid(n), score, day, amount)


def quota(families: int, budget: int, funders=SHARED) -> Quota:
    return Quota("jamsosratu", 2026, "3601", families, budget, funders)


def test_deprivation_first_then_earlier_registration_then_household_id():
    line = ranked([candidate(5, 60), candidate(3, 80), candidate(9, 70, date(2026, 2, 1)),
                   candidate(2, 70, date(2026, 3, 1)), candidate(7, 70, date(2026, 2, 1))])
    assert [c.household_id.int for c in line] == [3, 7, 9, 2, 5]


def test_ranking_is_the_same_whatever_order_the_candidates_come_in():
    pool = [candidate(n, random.Random(n).choice([50, 60, 70]), date(2026, 1, 1 + n % 3)) for n in range(40)]
    shuffled = pool[:]
    random.Random(1).shuffle(shuffled)
    assert ranked(shuffled) == ranked(pool)


def test_the_families_already_held_count_first_and_the_line_fills_what_is_left():
    line = ranked([candidate(n, 90 - n) for n in range(1, 6)])
    admitted = allocate(quota(4, 10**10), Usage(2, 2_000_000), line)
    assert [(a.candidate.household_id.int, a.rank) for a in admitted] == [(1, 1), (2, 2)]
    assert room(quota(4, 10**10), Usage(2, 2_000_000)) == 2
    assert allocate(quota(2, 10**10), Usage(2, 0), line) == []


def test_the_budget_stops_the_line_at_the_first_family_that_does_not_fit():
    line = [candidate(1, 90, amount=3_000_000), candidate(2, 80, amount=5_000_000), candidate(3, 70, amount=500_000)]
    admitted = allocate(quota(10, 7_000_000), Usage(0, 0), line)
    # the third would fit the budget left, but is never admitted before the less cheap, more deprived second
    assert [a.candidate.household_id.int for a in admitted] == [1]
    assert room(quota(10, 7_000_000), Usage(1, 7_000_000)) == 0


def test_each_admission_is_shared_between_funders_in_whole_rupiah():
    (admission,) = allocate(quota(1, 10**9), Usage(), [candidate(1, 90, amount=2_400_001)])
    assert [(f.funder, amount) for f, amount in admission.funders] == [
        ("apbd-provinsi-banten", 1_440_001), ("apbd-kab-pandeglang", 960_000)]
    for amount in (0, 1, 7, 999_999, 3_000_000):
        assert sum(split(amount, (Funder("a", 0.5), Funder("b", 0.3), Funder("c", 0.2)))) == amount
    assert split(5_000_000, (Funder("apbd-kota-cilegon", 1.0),)) == [5_000_000]


@pytest.mark.parametrize("funders,field,rule", [
    ((Funder("a", 0.6), Funder("b", 0.3)), "funders", "shares_sum"),
    ((Funder("a", 0.5), Funder("a", 0.5)), "funders[1].funder", "funder_unique"),
    ((), "funders", "funders_required"),
])
def test_funders_must_be_named_once_and_share_the_whole_budget(funders, field, rule):
    with pytest.raises(FundersRefused) as refused:
        check_funders(funders)
    assert (refused.value.field, refused.value.rule) == (field, rule)
    check_funders((Funder("a", 0.1), Funder("b", 0.2), Funder("c", 0.7)))  # 0.1 + 0.2 + 0.7 is 1 within rounding


def test_what_if_places_families_as_the_allocation_does():
    rng = random.Random(7)
    n = 300
    cands = [candidate(i + 1, float(rng.randint(40, 90)), date(2026, 1, rng.randint(1, 28)),
                       rng.choice([900_000, 2_400_000, 3_000_000])) for i in range(n)]
    q = quota(50, 100_000_000)
    expected = {a.candidate.household_id for a in allocate(q, Usage(), ranked(cands))}
    snap = Snapshot(
        household_id=np.frombuffer(b"".join(c.household_id.bytes for c in cands), dtype=np.uint8).reshape(-1, 16),
        region=np.full(n, 3601, np.int32), held=np.zeros(n, bool), candidate=np.ones(n, bool),
        registered_on=np.array([c.registered_on.toordinal() for c in cands], np.int32),
        score=np.array([c.score for c in cands]), desil=np.ones(n, np.int8), status=np.zeros(n, np.int8),
        components=np.ones(n, np.int16), yearly_amount=np.array([c.yearly_amount for c in cands], np.int64))
    placed = place(snap, snap.status == 0, snap.yearly_amount, snap.score, {3601: q}).placed
    assert {cands[i].household_id for i in np.nonzero(placed)[0]} == expected and expected
