"""Quotas, their funders, and who is admitted: pure rules, no I/O.

A quota is set per programme, year and kabupaten/kota (the 4-digit Kemendagri code) in families and in
budget (Rupiah a year), with the funding sources that share the budget (sharing anggaran: the province asks
each regency or city to pay a part; JSCM is paid wholly by Cilegon's APBD).

Ranking (the rule the API states): eligible candidates are ranked by deprivation first, the highest score
first; ties go to the family registered earlier, then to the smaller household id (as PostgreSQL orders
uuids). The same inputs always give the same order.

Allocation: the families already holding a place (active or suspended, or admitted and not yet applied by
the registry) count first. The line is then admitted in rank order while both the families and the budget
left cover the next family; the first family that does not fit stops the admissions, so a family is never
passed over by a less deprived one because it costs less. Those admitted are a prefix of the line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from uuid import UUID

SHARE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Funder:
    funder: str
    share: float


@dataclass(frozen=True)
class Quota:
    programme: str
    year: int
    region: str
    families: int
    budget: int
    funders: tuple[Funder, ...]


@dataclass(frozen=True)
class Candidate:
    """An eligible candidate in line: what it is ranked by and what it would cost."""

    household_id: UUID
    score: float
    registered_on: date
    yearly_amount: int
    desil: int | None = None
    rule_set: str = ""


@dataclass(frozen=True)
class Usage:
    """What a quota's places hold now: families and their yearly amounts."""

    families: int = 0
    amount: int = 0


@dataclass(frozen=True)
class Admission:
    candidate: Candidate
    rank: int
    funders: tuple[tuple[Funder, int], ...]  # each funder with the Rupiah it pays a year


class FundersRefused(ValueError):
    """The funders break a rule: `field` and `rule` name it, the message says why (never a value)."""

    def __init__(self, field: str, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.rule = field, rule


def check_funders(funders: Sequence[Funder]) -> None:
    """Each funder named once, the shares adding up to 1."""
    names = [f.funder for f in funders]
    if not funders:
        raise FundersRefused("funders", "funders_required", "a quota names at least one funder")
    for index, name in enumerate(names):
        if name in names[:index]:
            raise FundersRefused(f"funders[{index}].funder", "funder_unique", "each funder is named once")
    if not math.isclose(math.fsum(f.share for f in funders), 1.0, rel_tol=0, abs_tol=SHARE_TOLERANCE):
        raise FundersRefused("funders", "shares_sum", "the funders' shares must add up to 1")


def rank_key(candidate: Candidate) -> tuple:
    """Deprivation first (score descending), then earlier registration, then household id."""
    return (-candidate.score, candidate.registered_on, candidate.household_id)


def ranked(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=rank_key)


def split(amount: int, funders: Sequence[Funder]) -> list[int]:
    """`amount` Rupiah shared by the funders in proportion to their shares, in whole Rupiah adding up to it.

    Largest remainder: each gets the floor of its share, and the Rupiah left go to the largest fractions
    (ties to the funder named first), so the parts always add up to the whole.
    """
    exact = [amount * f.share for f in funders]
    parts = [math.floor(x) for x in exact]
    left = amount - sum(parts)
    order = sorted(range(len(funders)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:max(left, 0)]:
        parts[i] += 1
    return parts


def allocate(quota: Quota, held: Usage, line: Sequence[Candidate], first_rank: int = 1) -> list[Admission]:
    """The candidates of `line` (already in rank order, its first at `first_rank`) admitted into `quota`."""
    families, amount = held.families, held.amount
    admitted = []
    for offset, candidate in enumerate(line):
        if families + 1 > quota.families or amount + candidate.yearly_amount > quota.budget:
            break
        families, amount = families + 1, amount + candidate.yearly_amount
        shares = split(candidate.yearly_amount, quota.funders)
        admitted.append(Admission(candidate, first_rank + offset, tuple(zip(quota.funders, shares))))
    return admitted


def room(quota: Quota, held: Usage) -> int:
    """How many more families the quota could admit at most (the budget may stop it earlier)."""
    return max(0, quota.families - held.families) if held.amount < quota.budget else 0


def cost_per_funder(amount: int, funders: Sequence[Funder]) -> dict[str, int]:
    return {f.funder: part for f, part in zip(funders, split(amount, funders))}
