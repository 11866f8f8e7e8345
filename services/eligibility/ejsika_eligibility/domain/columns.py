"""The assessment over columns: a whole programme at once, for rule changes and what-if.

Same rules as `assessment.assess`, on numpy arrays instead of one household: a unit test holds the
two to equal results on random households. A frame is any mapping from a column name to an
array-like (a dict of numpy arrays, a polars DataFrame...): one column per indicator of the rule
set, a float with NaN (or None) where not observed, booleans as 1.0/0.0.

`decide` makes whole decisions (components, graduation, proposed exit, fingerprint) for a rule change;
what-if needs only the score and the benefits, and uses the same `score_columns` and `benefit_columns`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from .rules import INDICATORS, RuleSet

STATUSES = ("eligible", "not_eligible", "insufficient_data")  # the codes of `Scores.status`
NO_DESIL = 0


@dataclass(frozen=True)
class Scores:
    score: np.ndarray  # int32 points, the plain sum
    observed: np.ndarray  # int32 number of indicators observed
    desil: np.ndarray  # int8 1..10, NO_DESIL when too few indicators were observed
    status: np.ndarray  # int8 index into STATUSES

    def status_names(self) -> np.ndarray:
        return np.asarray(STATUSES, dtype=object)[self.status]


def column(frame: Mapping[str, Any], name: str, rows: int) -> np.ndarray:
    if name not in frame:
        return np.full(rows, np.nan)
    values = frame[name]
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    values = np.asarray(values)
    if values.dtype == object:  # None for not observed
        return np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    return values.astype(float, copy=False)


def points(rules: RuleSet, name: str, values: np.ndarray) -> np.ndarray:
    indicator = rules.indicators[name]
    seen = ~np.isnan(values)
    if indicator.bands is None:
        return np.where(seen & (values == 1.0), indicator.weight, 0).astype(np.int32)
    earned = np.zeros(values.shape, dtype=np.int32)
    for band in indicator.bands:
        inside = seen.copy()
        if band.from_ is not None:
            inside &= values >= band.from_
        if band.below is not None:
            inside &= values < band.below
        earned[inside] = band.points
    return earned


def score_columns(frame: Mapping[str, Any], rules: RuleSet, component_count: Any = None) -> Scores:
    """Score, desil and status of every row of `frame` under `rules`.

    Eligibility needs at least one benefit component: give `component_count` (per row, e.g. from
    `benefit_columns`) or a frame column `component_count`; without either, every row is taken to
    have one, so status then says what the score alone decides.
    """
    rows = len(next(iter(frame.values()))) if len(frame) else 0
    total = np.zeros(rows, dtype=np.int32)
    observed = np.zeros(rows, dtype=np.int32)
    for name in rules.order:
        values = column(frame, name, rows)
        total += points(rules, name, values)
        observed += (~np.isnan(values)).astype(np.int32)
    cuts = np.asarray(rules.desil, dtype=float)
    desil = (1 + (total[:, None] < cuts[None, :]).sum(axis=1)).astype(np.int8)
    sufficient = observed >= rules.min_observed
    desil[~sufficient] = NO_DESIL
    if component_count is None:
        component_count = frame["component_count"] if "component_count" in frame else np.ones(rows)
    has_component = np.asarray(component_count) > 0
    status = np.where(~sufficient, 2, np.where((desil <= rules.entry.max_desil) & has_component, 0, 1)).astype(np.int8)
    return Scores(total, observed, desil, status)


@dataclass(frozen=True)
class BenefitColumns:
    """The benefits of many households: one entry per (household, component, member) kept."""

    household: np.ndarray  # row of the household each entry belongs to
    component: np.ndarray  # index into rules.components
    member: np.ndarray  # row of the member in the member columns
    count: np.ndarray  # per household: entries kept
    amount: np.ndarray  # per household: Rupiah a year


def civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of days since 1970-01-01, in integer arithmetic (H. Hinnant's `civil_from_days`):
    numpy's own conversions of datetime64 to years and months cost most of scoring a province."""
    z = days.astype(np.int64) + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, doy - (153 * mp + 2) // 5 + 1


def _ages(days: np.ndarray, today: date) -> np.ndarray:
    years, months, day = civil(days)
    before = (today.month < months) | ((today.month == months) & (today.day < day))
    return (today.year - years - before).astype(np.int32)


_TABLE_SPAN = 1 << 18  # days (~700 years): the widest range of birth dates whose ages are tabulated


def ages_on(birth_dates: np.ndarray, today: date) -> np.ndarray:
    """Whole years on `today` of datetime64[D] birth dates, as `assessment.age_on` counts them.

    The calendar arithmetic (int64 divisions, which numpy does one at a time) runs once per day of the range the
    birth dates span (a few tens of thousands), and each member's age is then looked up in that table: for the
    millions of members of a province, the divisions per member cost most of scoring it."""
    days = np.asarray(birth_dates).astype("datetime64[D]").astype(np.int64)
    if not len(days):
        return np.zeros(0, dtype=np.int32)
    low, high = int(days.min()), int(days.max())
    if high - low >= min(_TABLE_SPAN, len(days)):
        return _ages(days, today)
    return _ages(np.arange(low, high + 1, dtype=np.int64), today)[days - low]


def benefit_columns(rules: RuleSet, households: int, members: Mapping[str, Any], today: date) -> BenefitColumns:
    """Components earned by members (columns `household` (row of its household, members of one household
    in order), `birth_date`, `in_school`, `pregnant`, `disability`, `sex`), in the rule set's order of
    components then members, cut to `max_components` per household."""
    household = np.asarray(members["household"], dtype=np.int64)
    ages = ages_on(np.asarray(members["birth_date"]), today)
    flags = {name: np.asarray(members[name], dtype=bool) for name in ("in_school", "pregnant", "disability")}
    sex = np.asarray(members["sex"], dtype=object) if "sex" in members else np.full(len(household), None)
    picked_h, picked_c, picked_m = [], [], []
    for index, component in enumerate(rules.components):
        condition = component.member
        holds = np.ones(len(household), dtype=bool)
        if condition.age_from is not None:
            holds &= ages >= condition.age_from
        if condition.age_to is not None:
            holds &= ages <= condition.age_to
        for name in ("in_school", "pregnant", "disability"):
            wanted = getattr(condition, name)
            if wanted is not None:
                holds &= flags[name] == wanted
        if condition.sex is not None:
            holds &= sex == condition.sex
        rows = np.nonzero(holds)[0]
        picked_h.append(household[rows])
        picked_c.append(np.full(len(rows), index, dtype=np.int64))
        picked_m.append(rows)
    h, c, m = (np.concatenate(p) if p else np.zeros(0, dtype=np.int64) for p in (picked_h, picked_c, picked_m))
    # by household, then component, then member: entries come by component, then member (whose households never
    # go down), so a stable sort on the household alone keeps the rest in order
    order = np.argsort(h, kind="stable")
    h, c, m = h[order], c[order], m[order]
    # rank of each entry within its household: position minus the position of the household's first entry
    starts = np.r_[0, np.nonzero(np.diff(h))[0] + 1] if len(h) else np.zeros(0, dtype=np.int64)
    first = np.repeat(starts, np.diff(np.r_[starts, len(h)]))
    keep = (np.arange(len(h)) - first) < rules.max_components
    h, c, m = h[keep], c[keep], m[keep]
    amounts = np.asarray([component.amount for component in rules.components], dtype=np.int64)
    count = np.bincount(h, minlength=households).astype(np.int32)
    amount = np.bincount(h, weights=amounts[c], minlength=households).astype(np.int64)
    return BenefitColumns(h, c, m, count, amount)


# A programme's households as columns, and every decision of a rule change over them.

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
SEXES = (None, "F", "M")  # the codes of `Households.sex`
GRADUATIONS = (None, "mandiri", "alamiah")  # the codes of `Decided.graduation`
EXITS = (None, "paksa", "mandiri", "alamiah")  # the codes of `Decided.exit`


@dataclass(frozen=True)
class Households:
    """Households in id order with their members flattened (`member_household` is each member's row), as the
    bulk reader (`household_columns`) gives them: everything an assessment reads, without a name or NIK."""

    ids: np.ndarray  # (n,) S16: the uuid's bytes, which order as PostgreSQL orders uuids
    active: np.ndarray  # bool: enrolment active
    escalation: np.ndarray  # object: the escalation kind, or None
    welfare_version: np.ndarray  # int64
    welfare: dict[str, np.ndarray]  # indicator -> float64, NaN where not observed, booleans as 1.0/0.0
    member_household: np.ndarray  # (m,) int64, non-decreasing; members of one household in their order
    member_id: np.ndarray  # (m,) S16; `member_has_id` False for members registered without one
    member_has_id: np.ndarray
    birth_date: np.ndarray  # datetime64[D]
    sex: np.ndarray  # int8 index into SEXES
    in_school: np.ndarray
    pregnant: np.ndarray
    disability: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def member_columns(self) -> dict[str, np.ndarray]:
        return {"household": self.member_household, "birth_date": self.birth_date, "in_school": self.in_school,
                "pregnant": self.pregnant, "disability": self.disability,
                "sex": np.asarray(SEXES, dtype=object)[self.sex]}


@dataclass(frozen=True)
class Decided:
    """The decisions of many households under one rule set, as columns (see `decide`)."""

    scores: Scores
    benefits: BenefitColumns
    ages: np.ndarray  # int32 per member, on the day
    graduation: np.ndarray  # int8 index into GRADUATIONS
    exit: np.ndarray  # int8 index into EXITS
    prior: np.ndarray  # int64, the run towards mandiri the decisions were made with
    components: np.ndarray  # int64 per household: index into `component_lists`
    component_lists: list[str]  # distinct ","-joined lists of components, in the decisions' order
    missing: np.ndarray  # int64 per household: index into `missing_lists`
    missing_lists: list[str]  # distinct ","-joined lists of indicators not observed
    fingerprint: list[str]


def _distinct(keys: np.ndarray, name_of, base: int) -> tuple[np.ndarray, list[str]]:
    """Index of each row of `keys` (small non-negative integers below `base`) among the distinct rows, and the
    name of each distinct row. Rows are folded into one integer where it fits: sorting those is far cheaper."""
    if keys.shape[1] == 0:  # nobody earns a component, say
        return np.zeros(len(keys), dtype=np.int64), [name_of(())]
    if base ** keys.shape[1] < 2**62:
        folded = keys.astype(np.int64) @ (base ** np.arange(keys.shape[1], dtype=np.int64))
        distinct, first, index = np.unique(folded, return_index=True, return_inverse=True)
        return index.reshape(-1).astype(np.int64), [name_of(keys[i]) for i in first]
    distinct, index = np.unique(keys, return_inverse=True, axis=0)
    return index.reshape(-1).astype(np.int64), [name_of(d) for d in distinct]


def component_lists(rules: RuleSet, benefits: BenefitColumns, households: int) -> tuple[np.ndarray, list[str]]:
    """The list of components of each household, as an index into a few distinct ","-joined lists."""
    width = int(benefits.count.max()) if households and len(benefits.household) else 0
    codes = np.zeros((households, width), dtype=np.int64)  # per household: 1 + each component index, 0 after
    if width:
        starts = np.r_[0, np.cumsum(benefits.count)[:-1]]
        rank = np.arange(len(benefits.household)) - starts[benefits.household]
        codes[benefits.household, rank] = benefits.component + 1
    names = [c.name for c in rules.components]
    return _distinct(codes, lambda row: ",".join(names[c - 1] for c in row if c > 0), len(names) + 1)


def missing_lists(rules: RuleSet, welfare: dict[str, np.ndarray], households: int) -> tuple[np.ndarray, list[str]]:
    unseen = np.stack([np.isnan(welfare[name]) if name in welfare else np.ones(households, dtype=bool)
                       for name in rules.order], axis=1) if rules.order else np.zeros((households, 0), dtype=bool)
    return _distinct(unseen, lambda row: ",".join(name for name, u in zip(rules.order, row) if u), 2)


def decide(households: Households, rules: RuleSet, today: date, prior: np.ndarray | None = None) -> Decided:
    """Every household's decision under `rules` on `today` (Asia/Jakarta), as `assessment.assess` makes it with
    `Context(prior[i], active[i])` (prior: the run towards mandiri before; 0 when not given)."""
    n = len(households)
    prior = np.zeros(n, dtype=np.int64) if prior is None else np.asarray(prior, dtype=np.int64)
    earned = benefit_columns(rules, n, households.member_columns(), today)
    scores = score_columns(households.welfare, rules, earned.count)
    grad = rules.graduation
    mandiri = (scores.desil != NO_DESIL) & (scores.desil >= grad.min_desil) & (prior + 1 >= grad.consecutive)
    active = households.active
    graduation = np.where(active & (earned.count == 0), 2, np.where(mandiri, 1, 0)).astype(np.int8)
    escalated = np.array([e is not None for e in households.escalation], dtype=bool)
    exit_ = np.where(~active, 0, np.where(escalated, 1, np.where(graduation == 1, 2, np.where(graduation == 2, 3, 0))))
    ages = ages_on(households.birth_date, today)
    components, component_names = component_lists(rules, earned, n)
    missing, missing_names = missing_lists(rules, households.welfare, n)
    return Decided(scores, earned, ages, graduation, exit_.astype(np.int8), prior, components, component_names,
                   missing, missing_names, fingerprints(households, rules, ages, prior))


def uuid_texts(ids: np.ndarray) -> np.ndarray:
    """The canonical text of many uuids (S16 or (m, 16) uint8), as an object array of str."""
    raw = np.frombuffer(np.ascontiguousarray(ids).tobytes(), dtype=np.uint8).reshape(-1, 16)
    digits = np.empty((len(raw), 32), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = HEX[raw >> 4], HEX[raw & 15]
    text = np.full((len(raw), 36), ord("-"), dtype=np.uint8)
    for start, end, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at:at + end - start] = digits[:, start:end]
    return text.view("S36").reshape(-1).astype("U36").astype(object)


def int_texts(values: Any) -> np.ndarray:
    """The decimal text of each integer, as an object array of str, made once per distinct value: numpy's own
    conversion (`astype(str)`) costs about eight times as much, and a rule change writes millions of them."""
    values = np.asarray(values)
    if not len(values):
        return np.zeros(0, dtype=object)
    distinct, index = np.unique(values, return_inverse=True)
    return np.asarray([str(v) for v in distinct.tolist()], dtype=object)[index.reshape(-1)]


def _json_floats(values: np.ndarray, boolean: bool) -> np.ndarray:
    """JSON of each observation as `json.dumps` writes `assessment.observed_value`: null, true/false, or the
    float's repr (computed once per distinct value)."""
    out = np.full(len(values), "null", dtype=object)
    seen = ~np.isnan(values)
    if boolean:
        out[seen] = np.where(values[seen] == 1.0, "true", "false")
    elif seen.any():
        distinct, index = np.unique(values[seen], return_inverse=True)
        out[seen] = np.asarray([repr(float(v)) for v in distinct], dtype=object)[index]
    return out


def _joined(parts: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    items = parts.tolist()
    return [",".join(items[a:b]) for a, b in zip(starts.tolist(), ends.tolist())]


def fingerprints(households: Households, rules: RuleSet, ages: np.ndarray, prior: np.ndarray) -> list[str]:
    """`assessment.fingerprint` of every household, from columns: the same canonical JSON (its pieces built a
    column at a time, joined once per household) and the same sha256."""
    n = len(households)
    pieces: list[np.ndarray | str] = [f"[{json.dumps(rules.id)},["]
    for k, name in enumerate(rules.order):
        values = households.welfare.get(name, np.full(n, np.nan))
        pieces += [_json_floats(np.asarray(values, dtype=float), not INDICATORS.get(name, False)),
                   "," if k < len(rules.order) - 1 else "],"]
    truth = np.asarray(["false", "true"], dtype=object)
    ids = np.where(households.member_has_id, '"' + uuid_texts(households.member_id) + '"', "null") if len(
        households.member_id) else np.zeros(0, dtype=object)
    sexes = np.asarray(["null", '"F"', '"M"'], dtype=object)
    member_pieces = ["[", ids, ",", int_texts(ages), ",", sexes[households.sex], ",",
                     truth[households.in_school.astype(np.int8)], ",", truth[households.pregnant.astype(np.int8)], ",",
                     truth[households.disability.astype(np.int8)], "]"]
    members = _rows(member_pieces, len(ages))
    bounds = np.searchsorted(households.member_household, np.arange(n + 1))
    escalation = ["null" if e is None else json.dumps(e) for e in households.escalation]
    pieces += [int_texts(households.welfare_version), ",[",
               _joined(np.asarray(members, dtype=object), bounds[:-1], bounds[1:]), "],", escalation, ",",
               int_texts(prior), ",", truth[households.active.astype(np.int8)], "]"]
    return [hashlib.sha256(t.encode()).hexdigest() for t in _rows(pieces, n)]


def _rows(pieces: list, n: int) -> list[str]:
    """Row i of the text whose pieces are strings (the same in every row) or columns (one value per row)."""
    columns = [[p] * n if isinstance(p, str) else p.tolist() if isinstance(p, np.ndarray) else p for p in pieces]
    return ["".join(row) for row in zip(*columns)]
