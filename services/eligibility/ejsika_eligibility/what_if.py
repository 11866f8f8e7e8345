"""Use case: what would change under another quota, entry or graduation threshold, or rule set; nothing is written.

The snapshot of a programme (every household with its current decision) is read as a few values of fixed-width
records packed by PostgreSQL, straight into numpy, in no particular order (the ranking sorts anyway), each table
apart and paired by household id in numpy. It is read afresh for each question rather than cached: a cache per
replica would hold as much as the register and need its own invalidation, for an answer that must reflect the
decisions made a moment ago. A new rule set
is scored by `domain.columns`, the scorer of the rule change, over the narrow state of the households
(`household_columns.State`, packed by PostgreSQL when their inputs were written), read in the same statement as
the decisions. The answer compares the baseline (the rules and quotas in force) with the scenario
(`domain.what_if`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np

from .domain import columns
from .domain.quotas import Quota
from .domain.rules import RuleSet
from . import rule_book
from . import quotas as quota_store
from .domain.what_if import Snapshot, eligible_under, funders_cost, place, uuid_order_keys
from .household_columns import State

# Every household of a programme as fixed-width records packed by PostgreSQL's send functions, aggregated into one
# value per part, so that numpy reads them as they come and the client handles one message instead of one per
# household (which cost as much as the query). The decisions in force (packed when written, migration 019), the
# narrow states (migration 016) and the admissions not yet applied are aggregated apart, each from its own table, and
# paired by household id in numpy (`pair`): joining them in PostgreSQL took most of the time. The aggregates of one
# table see its rows in one order, so record i of the ids, the states and (read only to score a new rule set) the
# members is the same household's.
_SNAPSHOT = """
  SELECT (SELECT string_agg(packed, ''::bytea) FROM decisions WHERE programme = $1 AND active_rule) AS decided,
         (SELECT string_agg(household_id_packed, ''::bytea) FROM (SELECT DISTINCT uuid_send(household_id)
            AS household_id_packed FROM admissions WHERE settled_at IS NULL) a) AS admitted,
         s.ids, s.fixed, s.members
  FROM (SELECT string_agg(uuid_send(household_id), ''::bytea) AS ids, string_agg(fixed, ''::bytea) AS fixed,
               {members} AS members
        FROM household_state WHERE programme = $1) s
"""
_DECIDED = np.dtype([("household_id", "V16"), ("score", ">f4"), ("desil", ">i2"), ("status", ">i2"),
                     ("components", ">i2"), ("yearly_amount", ">i8")])
CANDIDATE, ACTIVE, SUSPENDED = 1, 2, 3  # household_columns.ENROLMENTS
INSUFFICIENT = 2  # the status of a household without a decision


async def read(conn: asyncpg.Connection, programme: str, members: bool) -> asyncpg.Record:
    """The packed parts of every household of `programme`: its decision, its state and (with `members`) its
    members."""
    return await conn.fetchrow(_SNAPSHOT.format(
        members="string_agg(members, ''::bytea)" if members else "NULL::bytea"), programme)


def pair(ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The row of `ids` ((n, 16) uint8, distinct) holding each of `keys` ((m, 16) uint8), -1 for a key not among
    them.

    Both sorted by the first half of the id (a sort of one integer column each: ~0.1 s a million), the sorted keys
    found by a binary search that starts where the last ended, and each match checked whole. Two ids alike in their
    first half (one chance in 2**64 a pair) are told apart by a sort on both halves."""
    if not len(ids) or not len(keys):
        return np.full(len(keys), -1, dtype=np.int64)
    hi, lo = uuid_order_keys(ids)
    key_hi, key_lo = uuid_order_keys(keys)
    order, key_order = np.argsort(hi), np.argsort(key_hi)
    if (np.diff(hi[order]) == 0).any():
        order, key_order = np.lexsort((lo, hi)), np.lexsort((key_lo, key_hi))
        both = np.dtype([("hi", np.uint64), ("lo", np.uint64)])
        ordered, wanted = np.empty(len(order), both), np.empty(len(keys), both)
        ordered["hi"], ordered["lo"] = hi[order], lo[order]
        wanted["hi"], wanted["lo"] = key_hi[key_order], key_lo[key_order]
    else:
        ordered, wanted = hi[order], key_hi[key_order]
    found = np.empty(len(keys), dtype=np.int64)
    found[key_order] = np.minimum(np.searchsorted(ordered, wanted), len(order) - 1)
    rows = order[found]
    return np.where((hi[rows] == key_hi) & (lo[rows] == key_lo), rows, -1)


def unpack(packed: asyncpg.Record) -> tuple[Snapshot, State]:
    """The snapshot and the households' state, row i of each the same household."""
    state = State.unpack(packed["fixed"] or b"", packed["members"])
    ids = np.frombuffer(packed["ids"] or b"", dtype=np.uint8).reshape(-1, 16)
    if len(ids) != len(state):
        raise ValueError("the ids and the states of the households do not pair up")
    decided = np.frombuffer(packed["decided"] or b"", dtype=_DECIDED)
    row = pair(ids, np.frombuffer(decided["household_id"].tobytes(), dtype=np.uint8).reshape(-1, 16))
    decided, row = decided[row >= 0], row[row >= 0]  # a decision of a household without a state: none yet

    def column(name: str, dtype, missing) -> np.ndarray:
        values = np.full(len(ids), missing, dtype=dtype)
        values[row] = decided[name]
        return values

    admitted = np.zeros(len(ids), dtype=bool)
    pending = pair(ids, np.frombuffer(packed["admitted"] or b"", dtype=np.uint8).reshape(-1, 16))
    admitted[pending[pending >= 0]] = True
    enrolment = state.enrolment
    held = (enrolment == ACTIVE) | (enrolment == SUSPENDED) | ((enrolment == CANDIDATE) & admitted)
    snap = Snapshot(household_id=ids, region=state.region, held=held, candidate=(enrolment == CANDIDATE) & ~admitted,
                    registered_on=state.registered_on, score=column("score", np.float64, 0),
                    desil=column("desil", np.int8, 0), status=column("status", np.int8, INSUFFICIENT),
                    components=column("components", np.int16, 0),
                    yearly_amount=column("yearly_amount", np.int64, 0))
    return snap, state


async def snapshot(conn: asyncpg.Connection, programme: str, members: bool = False) -> tuple[Snapshot, State]:
    """Every household of `programme`, with its current decision and state, as columns."""
    return unpack(await read(conn, programme, members))


@dataclass(frozen=True)
class Scenario:
    programme: str
    year: int
    quotas: dict[str, Quota] = field(default_factory=dict)  # region -> the quota it would have
    entry_max_desil: int | None = None
    graduation_min_desil: int | None = None
    graduation_consecutive: int | None = None
    rule_set: RuleSet | None = None
    first: int = 20


def rescore(state: State, rules: RuleSet, today: date
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Score, desil, status, yearly amount and components count of every household of `state` (read with its
    members) under `rules`, as `domain.columns` scores them for a rule change."""
    earned = columns.benefit_columns(rules, len(state), state.member_columns(), today)
    scores = columns.score_columns(state.welfare, rules, earned.count)
    return (scores.score.astype(np.float64), scores.desil, scores.status, earned.amount,
            earned.count.astype(np.int16))


async def run(conn: asyncpg.Connection, scenario: Scenario, today: date) -> dict[str, Any]:
    """The comparison of the baseline with `scenario`, computed in a read-only transaction."""
    # the rules in force first: the first read of a programme's rules stores its shipped defaults
    current = (await rule_book.active(conn, [scenario.programme])).get(scenario.programme)
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        snap, state = await snapshot(conn, scenario.programme, members=scenario.rule_set is not None)
        stored, _ = await quota_store.listed(conn, scenario.programme, scenario.year, None, 10_000)
    if scenario.rule_set is not None:
        score, desil, status, amount, count = rescore(state, scenario.rule_set, today)
        snap_after = Snapshot(snap.household_id, snap.region, snap.held, snap.candidate, snap.registered_on,
                              score, desil, status, count, amount)
        eligible_after = status == 0
    else:
        score, amount, snap_after = snap.score, snap.yearly_amount, snap
        max_desil = scenario.entry_max_desil or (current.entry.max_desil if current else 4)
        eligible_after = eligible_under(snap, max_desil)
    before_quotas = {int(s.quota.region): s.quota for s in stored}
    after_quotas = {**before_quotas, **{int(r): q for r, q in scenario.quotas.items()}}
    eligible_before = snap.status == 0
    before = place(snap, eligible_before, snap.yearly_amount, snap.score, before_quotas)
    after = place(snap_after, eligible_after, amount, score, after_quotas)
    entering = np.nonzero(after.placed & ~before.placed)[0]
    leaving = np.nonzero(before.placed & ~after.placed)[0]
    graduation = _graduation(scenario, current, snap_after)

    def ids(rows: np.ndarray) -> list[UUID]:
        """The first of `rows` in household id order (the snapshot comes in the table's order)."""
        hi, lo = uuid_order_keys(snap.household_id[rows])
        return [UUID(bytes=snap.household_id[i].tobytes()) for i in rows[np.lexsort((lo, hi))][:scenario.first]]

    regions = []
    for r in sorted(set(before_quotas) | set(after_quotas)):
        b, a = before_quotas.get(r), after_quotas.get(r)
        before_f = funders_cost(before.cost.get(r, 0), b.funders) if b else {}
        after_f = funders_cost(after.cost.get(r, 0), a.funders) if a else {}
        regions.append({
            "region": f"{r:04d}", "families_before": before.families.get(r, 0), "families_after": after.families.get(r, 0),
            "cost_before": before.cost.get(r, 0), "cost_after": after.cost.get(r, 0),
            "funders": [{"funder": f, "cost_before": before_f.get(f, 0), "cost_after": after_f.get(f, 0)}
                        for f in dict.fromkeys([*before_f, *after_f])]})
    return {"programme": scenario.programme, "year": scenario.year, "households": len(snap),
            "entering": {"count": len(entering), "first": ids(entering)},
            "leaving": {"count": len(leaving), "first": ids(leaving)},
            "eligible": {"before": int(eligible_before.sum()), "after": int(eligible_after.sum())},
            "graduation_candidates": graduation,
            "families": {"before": int(before.placed.sum()), "after": int(after.placed.sum())},
            "cost": {"before": int(snap.yearly_amount[before.placed].sum()), "after": int(amount[after.placed].sum())},
            "regions": regions}


def _graduation(scenario: Scenario, current: RuleSet | None, snap: Snapshot) -> dict[str, int] | None:
    """Families holding a place whose desil reaches the graduation threshold (mandiri candidates once it holds
    for the configured assessments in a row), under the scenario's threshold."""
    rules = scenario.rule_set or current
    if rules is None:
        return None
    threshold = scenario.graduation_min_desil or rules.graduation.min_desil
    consecutive = scenario.graduation_consecutive or rules.graduation.consecutive
    reached = snap.held & (snap.desil >= threshold)
    return {"min_desil": threshold, "consecutive": consecutive, "held_at_or_above": int(reached.sum()),
            "no_component_left": int((snap.held & (snap.components == 0) & (snap.status != 2)).sum())}
