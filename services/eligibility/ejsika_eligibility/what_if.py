"""Use case: what would change under another quota, entry or graduation threshold, or rule set; nothing is written.

The snapshot of a programme (every household with its current decision) is read as a few values of fixed-width
records packed by PostgreSQL, straight into numpy, in no particular order (the ranking sorts anyway). It is
read afresh for each question rather than cached: a cache per replica would hold as much as the register and
need its own invalidation, for an answer that must reflect the decisions made a moment ago. A new rule set
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

# Every household as fixed-width records packed by PostgreSQL's send functions, aggregated into one value per
# part (the aggregates of one statement see the rows in the same order, so record i of each part is the same
# household's): numpy reads them as they come, and the client handles one message instead of one per household
# (which cost as much as the query). The members are read only to score a new rule set.
_SNAPSHOT = """
  SELECT string_agg(
           uuid_send(s.household_id)
           || boolsend(a.household_id IS NOT NULL)
           || float4send(coalesce(d.score, 0)::float4)
           || int2send(coalesce(d.desil, 0)::int2)
           || int2send(CASE d.status WHEN 'eligible' THEN 0 WHEN 'not_eligible' THEN 1 ELSE 2 END::int2)
           || int2send(coalesce(cardinality(d.components), 0)::int2)
           || int8send(coalesce(d.yearly_amount, 0)::int8), ''::bytea) AS decided,
         string_agg(s.fixed, ''::bytea) AS fixed,
         {members} AS members
  FROM household_state s
  LEFT JOIN decisions d ON d.household_id = s.household_id AND d.programme = s.programme AND d.active_rule
  LEFT JOIN (SELECT DISTINCT household_id FROM admissions WHERE settled_at IS NULL) a ON a.household_id = s.household_id
  WHERE s.programme = $1
"""
_DECIDED = np.dtype([("household_id", "V16"), ("admitted", "?"), ("score", ">f4"), ("desil", ">i2"),
                     ("status", ">i2"), ("components", ">i2"), ("yearly_amount", ">i8")])
CANDIDATE, ACTIVE, SUSPENDED = 1, 2, 3  # household_columns.ENROLMENTS


async def read(conn: asyncpg.Connection, programme: str, members: bool) -> asyncpg.Record:
    """The packed parts of every household of `programme`: its decision, its state and (with `members`) its
    members."""
    return await conn.fetchrow(_SNAPSHOT.format(
        members="string_agg(s.members, ''::bytea)" if members else "NULL::bytea"), programme)


def unpack(packed: asyncpg.Record) -> tuple[Snapshot, State]:
    """The snapshot and the households' state, row i of each the same household."""
    rows = np.frombuffer(packed["decided"] or b"", dtype=_DECIDED)
    state = State.unpack(packed["fixed"] or b"", packed["members"])
    if len(state) != len(rows):
        raise ValueError("the decisions and the states of the households do not pair up")
    ids = np.frombuffer(rows["household_id"].tobytes(), dtype=np.uint8).reshape(-1, 16)
    enrolment, admitted = state.enrolment, rows["admitted"]
    held = (enrolment == ACTIVE) | (enrolment == SUSPENDED) | ((enrolment == CANDIDATE) & admitted)
    snap = Snapshot(household_id=ids, region=state.region, held=held, candidate=(enrolment == CANDIDATE) & ~admitted,
                    registered_on=state.registered_on, score=rows["score"].astype(np.float64),
                    desil=rows["desil"].astype(np.int8), status=rows["status"].astype(np.int8),
                    components=rows["components"].astype(np.int16),
                    yearly_amount=rows["yearly_amount"].astype(np.int64))
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
        # the join of a province's states and decisions hashes ~130 MB: in memory, not spilled in batches to disk
        await conn.execute("SET LOCAL work_mem = '256MB'")
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
