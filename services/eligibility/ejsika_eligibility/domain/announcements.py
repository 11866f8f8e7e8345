"""The decisions of a rule change as they are told: explanations, benefits and `eligibility.assessed` events
written as JSON straight from columns.

A rule change may announce hundreds of thousands of decisions; building and validating a model per family
cost more than all the rest of the job. The JSON here has the contract's shape (a unit test validates it
against `EligibilityAssessed` and holds it equal to the event `assessment.assess` makes), written a column at
a time for the households announced (`rows`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

import numpy as np

from .assessment import ELDERLY_FROM, ENTERING_SMA, SCHOOL_FROM, SCHOOL_TO, TODDLER_TO, Context, proposed_exit
from .columns import (EXITS, GRADUATIONS, STATUSES, Decided, Households, _joined, _json_floats, _rows, int_texts,
                      points, uuid_texts)
from .rules import INDICATORS, RuleSet

EVENT_TYPE = "eligibility.assessed"


@dataclass(frozen=True)
class Told:
    """What the history keeps and the event carries, per household announced (in the order of `rows`)."""

    explanation: list[str]
    benefits: list[str]
    proposed_exit: list[str | None]
    events: list[str]


_text = int_texts


def explanations(households: Households, rules: RuleSet, rows: np.ndarray) -> list[str]:
    pieces: list = ["["]
    for k, name in enumerate(rules.order):
        values = np.asarray(households.welfare.get(name, np.full(len(households), np.nan)), dtype=float)[rows]
        pieces += [f'{"," if k else ""}{{"indicator":{json.dumps(name)},"observed":',
                   _json_floats(values, not INDICATORS.get(name, False)), ',"points":',
                   _text(points(rules, name, values)), "}"]
    return _rows(pieces + ["]"], len(rows))


def benefit_lists(households: Households, decided: Decided, rules: RuleSet, rows: np.ndarray) -> list[str]:
    """[{"component", "member_id", "amount"}, ...] of each household, in the order the decision keeps them."""
    earned = decided.benefits
    wanted = np.zeros(len(households), dtype=bool)
    wanted[rows] = True
    keep = wanted[earned.household]
    h, c, m = earned.household[keep], earned.component[keep], earned.member[keep]
    head = np.asarray([f'{{"component":{json.dumps(x.name)},"member_id":' for x in rules.components], dtype=object)
    tail = np.asarray([f',"amount":{x.amount}}}' for x in rules.components], dtype=object)
    ids = (np.where(households.member_has_id[m], '"' + uuid_texts(households.member_id[m]) + '"', "null")
           if len(m) else np.zeros(0, dtype=object))
    entries = head[c] + ids + tail[c]
    bounds = np.searchsorted(h, rows), np.searchsorted(h, rows, side="right")
    return [f"[{listed}]" for listed in _joined(entries, *bounds)]


def member_counts(households: Households, decided: Decided, rows: np.ndarray) -> list:
    """The pieces of MemberCounts of each household (`assessment.counts`, over columns)."""
    n, owner, ages = len(households), households.member_household, decided.ages
    school = households.in_school

    def count(mask: np.ndarray) -> np.ndarray:
        return _text(np.bincount(owner[mask], minlength=n)[rows])

    return ['{"pregnant":', count(households.pregnant), ',"toddlers":', count(ages <= TODDLER_TO),
            ',"school_children":', count(school & (ages >= SCHOOL_FROM) & (ages <= SCHOOL_TO)),
            ',"children_entering_sma":', count(school & (ages == ENTERING_SMA)),
            ',"elderly":', count(ages >= ELDERLY_FROM), ',"disabled":', count(households.disability), "}"]


def told(households: Households, decided: Decided, rules: RuleSet, rows: np.ndarray, region_codes: list[str],
         escalations: dict[int, object], event_ids: np.ndarray, correlation_ids: np.ndarray,
         at: datetime | None = None) -> Told:
    """The history's JSON and the events of the households at `rows` (of `households`).

    `escalations`: the escalation (assessment.Escalation) of each row whose proposed exit is paksa, for its
    reason; `event_ids`, `correlation_ids`: (len(rows), 16) uint8.
    """
    at = at or datetime.now(timezone.utc)
    explanation = explanations(households, rules, rows)
    benefits = benefit_lists(households, decided, rules, rows)
    exits = []
    fixed = {kind: proposed_exit(kind, None, rules, Context(active=True)) for kind in ("mandiri", "alamiah")}
    for row, code in zip(rows.tolist(), decided.exit[rows].tolist()):
        kind = EXITS[code]
        exit_ = (proposed_exit(None, escalations[row], rules, Context(active=True)) if kind == "paksa"
                 else fixed.get(kind))
        exits.append(None if exit_ is None else json.dumps(exit_, separators=(",", ":")))
    scores = decided.scores
    status = np.asarray(STATUSES, dtype=object)[scores.status[rows]]
    desil = scores.desil[rows]
    as_json = [json.dumps(listed.split(",") if listed else []) for listed in decided.component_lists]
    components = np.asarray(as_json, dtype=object)[decided.components[rows]]
    as_json = [json.dumps(listed.split(",") if listed else []) for listed in decided.missing_lists]
    missing = np.asarray(as_json, dtype=object)[decided.missing[rows]]
    graduation = np.asarray(["null" if g is None else f'"{g}"' for g in GRADUATIONS], dtype=object)
    ids = uuid_texts(households.ids[rows])
    time = at.isoformat().replace("+00:00", "Z")
    events = _rows([
        '{"id":"', uuid_texts(event_ids), f'","type":"{EVENT_TYPE}","source":"eligibility","time":"{time}"',
        ',"subject":"', ids, '","specversion":"1.0","dataversion":1,"correlation_id":"', uuid_texts(correlation_ids),
        '","causation_id":null,"data":{"household_id":"', ids,
        f'","programme":{json.dumps(rules.programme)},"region_code":', [json.dumps(r) for r in region_codes],
        f',"rule_set":{json.dumps(rules.id)},"score":', _text(scores.score[rows]),
        ',"eligible":', np.where(status == "eligible", "true", "false").astype(object), ',"components":', components,
        ',"member_counts":', *member_counts(households, decided, rows), ',"explanation":', explanation,
        f',"rule_version":{rules.version},"status":"', status,
        '","desil":', np.where(desil == 0, "null", _text(desil)).astype(object), ',"missing":', missing,
        ',"benefits":', benefits, ',"yearly_amount":', _text(decided.benefits.amount[rows]),
        ',"fingerprint":"', np.asarray(decided.fingerprint, dtype=object)[rows],
        '","graduation":', graduation[decided.graduation[rows]],
        ',"proposed_exit":', ["null" if e is None else e for e in exits], "}}"], len(rows))
    return Told(explanation, benefits, exits, events)


def random_uuids(n: int) -> np.ndarray:
    """n version-4 uuids as (n, 16) uint8, without a Python object each."""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


def uuid_list(raw: np.ndarray) -> list[UUID]:
    return [UUID(bytes=bytes(r)) for r in raw]
