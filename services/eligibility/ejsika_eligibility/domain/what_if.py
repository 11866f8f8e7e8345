"""What-if over columns (numpy): who would hold a place under other rules or quotas, and what it would cost.

A snapshot holds one row per household of a programme (`Snapshot`). The same function places families for the
baseline (the rules and quotas in force) and for the scenario, so the two are compared like with like:

- a family holding a place (active, suspended, or admitted and not yet applied) keeps it while it is eligible;
  one no longer eligible would leave (its exit is proposed);
- the eligible candidates of each region are then admitted in rank order (`domain.quotas`: score descending,
  earlier registration, smaller household id) while the families and the budget left cover the next one.

Entering: placed in the scenario and not in the baseline; leaving: the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .quotas import Funder, Quota, split

ELIGIBLE, NOT_ELIGIBLE, INSUFFICIENT = 0, 1, 2  # as domain.columns.STATUSES


@dataclass
class Snapshot:
    household_id: np.ndarray  # (n, 16) uint8, the uuid's bytes (they order as PostgreSQL orders uuids)
    region: np.ndarray  # int32 kabupaten/kota code, e.g. 3601
    held: np.ndarray  # bool: active, suspended, or admitted and not yet applied
    candidate: np.ndarray  # bool: enrolment candidate, not admitted yet
    registered_on: np.ndarray  # int32 days (any epoch; only the order matters)
    score: np.ndarray  # float
    desil: np.ndarray  # int8, 0 without desil
    status: np.ndarray  # int8, ELIGIBLE / NOT_ELIGIBLE / INSUFFICIENT
    components: np.ndarray  # int16 count of benefit components
    yearly_amount: np.ndarray  # int64 Rupiah

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True)
class Placement:
    placed: np.ndarray  # bool per household: holds a place
    cost: dict[int, int]  # region -> Rupiah a year of the families placed
    families: dict[int, int]  # region -> families placed


def eligible_under(snapshot: Snapshot, max_desil: int) -> np.ndarray:
    """Eligibility with another entry threshold, from the stored desil and components."""
    return (snapshot.status != INSUFFICIENT) & (snapshot.desil >= 1) & (snapshot.desil <= max_desil) & (
        snapshot.components > 0)


def uuid_order_keys(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    as_u64 = ids.view(">u8").reshape(-1, 2)
    return as_u64[:, 0].astype(np.uint64), as_u64[:, 1].astype(np.uint64)


def place(snapshot: Snapshot, eligible: np.ndarray, amount: np.ndarray, score: np.ndarray,
          quotas: dict[int, Quota]) -> Placement:
    """Who holds a place: the eligible held families, then each region's line admitted within its quota."""
    kept = snapshot.held & eligible
    regions = snapshot.region
    families = {r: int(np.count_nonzero(kept & (regions == r))) for r in quotas}
    spent = {r: int(amount[kept & (regions == r)].sum()) for r in quotas}
    waiting = np.nonzero(snapshot.candidate & eligible & np.isin(regions, list(quotas)))[0]
    hi, lo = uuid_order_keys(snapshot.household_id[waiting])
    # lexsort: the last key is the primary one
    order = waiting[np.lexsort((lo, hi, snapshot.registered_on[waiting], -score[waiting], regions[waiting]))]
    placed = kept.copy()
    line_regions = regions[order]
    for r, quota in quotas.items():
        mine = order[line_regions == r]
        if not len(mine):
            continue
        count = np.arange(1, len(mine) + 1) + families[r]
        cumulative = np.cumsum(amount[mine]) + spent[r]
        fits = (count <= quota.families) & (cumulative <= quota.budget)
        n = int(np.argmin(fits)) if not fits.all() else len(fits)  # the first that does not fit stops the line
        placed[mine[:n]] = True
        families[r] += n
        spent[r] += int(amount[mine[:n]].sum())
    cost = {r: int(amount[placed & (regions == r)].sum()) for r in quotas}
    count = {r: int(np.count_nonzero(placed & (regions == r))) for r in quotas}
    return Placement(placed, cost, count)


def funders_cost(cost: int, funders: tuple[Funder, ...]) -> dict[str, int]:
    return {f.funder: part for f, part in zip(funders, split(cost, funders))}
