"""A household's enrolment in a programme: candidate -> active -> suspended -> exited, and back to candidate.

The rules of each step, checked before anything is stored:

- only the transitions of `TRANSITIONS` happen: a candidate is admitted (active) or not (exited), an active
  family is suspended and resumed, either leaves, and a family that left may be surveyed again and
  re-enter as a candidate;
- an exit says its kind (DOMAIN.md: mandiri, the family declares itself able; alamiah, no eligible component
  is left; paksa, non-compliance or certified able), why, and from which day;
- no step is dated in the future or before the enrolment's last step;
- a family is not active (or suspended) in two programmes that exclude each other (`domain.programmes`).

The registry never exits a family on its own: an eligibility decision only recommends an exit
(`recommended_exit`), which an operator confirms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, get_args

from ejsika_contracts import EligibilityAssessedData

from .programmes import PROGRAMMES, Programme, exclusive

Status = Literal["candidate", "active", "suspended", "exited"]
ExitKind = Literal["mandiri", "alamiah", "paksa"]
STATUSES: tuple[Status, ...] = get_args(Status)
EXIT_KINDS: tuple[ExitKind, ...] = get_args(ExitKind)

# From each status (None: not enrolled yet) to the ones it may become.
TRANSITIONS: dict[Status | None, frozenset[Status]] = {
    None: frozenset({"candidate"}),
    "candidate": frozenset({"active", "exited"}),
    "active": frozenset({"suspended", "exited"}),
    "suspended": frozenset({"active", "exited"}),
    "exited": frozenset({"candidate"}),
}
# The statuses that hold a place in a programme (and so exclude the programmes that exclude it).
HELD: frozenset[Status] = frozenset({"active", "suspended"})
MAX_REASON = 500


@dataclass(frozen=True)
class Enrolment:
    programme: str
    status: Status
    effective_date: date
    exit_kind: ExitKind | None = None
    reason: str | None = None

    def state(self) -> dict[str, Any]:
        """As the household's state and its history hold it (`enrolments/<programme>`)."""
        return {"status": self.status, "exit_kind": self.exit_kind, "reason": self.reason,
                "effective_date": self.effective_date.isoformat()}

    @classmethod
    def of(cls, programme: str, state: Mapping[str, Any]) -> Enrolment:
        effective = state["effective_date"]
        if isinstance(effective, str):
            effective = date.fromisoformat(effective)
        return cls(programme, state["status"], effective, state.get("exit_kind"), state.get("reason"))


@dataclass(frozen=True)
class Wanted:
    """What the author asks the enrolment to become."""

    status: Status
    exit_kind: ExitKind | None = None
    reason: str | None = None
    effective_date: date | None = None  # None: today


class TransitionRefused(ValueError):
    """The step breaks a rule: `field` and `rule` name it, the message says why, never with a value.

    `conflict` marks a refusal because of the enrolment's current state (HTTP 409), not because of what
    was asked (422).
    """

    def __init__(self, field: str, rule: str, reason: str, *, conflict: bool = False) -> None:
        super().__init__(reason)
        self.field, self.rule, self.conflict = field, rule, conflict


def transition(current: Enrolment | None, programme: str, wanted: Wanted, others: Sequence[Enrolment], today: date,
               programmes: Mapping[str, Programme] | None = None) -> Enrolment:
    """The enrolment after `wanted`, given the household's enrolments in the other programmes (`others`)."""
    programmes = PROGRAMMES if programmes is None else programmes
    before = current.status if current else None
    if wanted.status not in TRANSITIONS[before]:
        allowed = ", ".join(sorted(TRANSITIONS[before]))
        raise TransitionRefused("status", "enrolment_transition",
                                f"an enrolment that is {before or 'not there'} can only become {allowed}",
                                conflict=True)
    day = wanted.effective_date or today
    if day > today:
        raise TransitionRefused("effective_date", "effective_date", "effective_date cannot lie in the future")
    if current is not None and day < current.effective_date:
        raise TransitionRefused("effective_date", "effective_date",
                                "effective_date cannot lie before the enrolment's last change")
    if wanted.reason is not None and not (0 < len(wanted.reason) <= MAX_REASON):
        raise TransitionRefused("reason", "reason", f"reason must be 1 to {MAX_REASON} characters")
    if wanted.status == "exited":
        if wanted.exit_kind not in EXIT_KINDS:
            raise TransitionRefused("exit_kind", "exit_kind", "an exit needs its kind: mandiri, alamiah or paksa")
        if not wanted.reason:
            raise TransitionRefused("reason", "reason", "an exit needs its reason")
        if wanted.effective_date is None:
            raise TransitionRefused("effective_date", "effective_date", "an exit needs the day it takes effect")
    elif wanted.exit_kind is not None:
        raise TransitionRefused("exit_kind", "exit_kind", "only an exit has a kind")
    if wanted.status == "active":
        held = sorted(o.programme for o in others if o.programme != programme and o.status in HELD
                      and exclusive(programme, o.programme, programmes))
        if held:
            raise TransitionRefused("status", "programme_exclusive",
                                    f"the family is active in {', '.join(held)}, which excludes this programme",
                                    conflict=True)
    return Enrolment(programme, wanted.status, day, wanted.exit_kind if wanted.status == "exited" else None,
                     wanted.reason)


def candidate(programme: str, day: date) -> Enrolment:
    """A household entering a programme: registered for it, or surveyed again after it left."""
    return Enrolment(programme, "candidate", day)


def recommended_exit(eligible: bool, components: Sequence[str]) -> ExitKind | None:
    """The exit an eligibility decision recommends for an active (or suspended) family, or None.

    Eligible: none. Not eligible with no component left (no pregnant woman, toddler, school child or
    elderly member any more): alamiah. Not eligible although components remain, so the score says the
    family is no longer poor (it became prosperous, sejahtera): paksa, the kind DOMAIN.md gives a family
    certified as able. A family declaring itself able (mandiri) is the operator's to record, never an
    event's.
    """
    if eligible:
        return None
    return "paksa" if components else "alamiah"


def proposed_exit(data: EligibilityAssessedData) -> tuple[ExitKind | None, str | None]:
    """The exit a decision recommends and why: the one it proposes, if any.

    A decision of the rule sets as data (with a `rule_version`) says itself which exit it proposes
    (paksa after an escalated non-compliance, a graduation), and none when it proposes none: a family
    slightly above the entry threshold is not thereby certified able. An older decision, without that
    field, recommends as `recommended_exit` reads it.
    """
    if data.proposed_exit is not None:
        return data.proposed_exit.kind, data.proposed_exit.reason[:MAX_REASON]
    if data.rule_version is not None:
        return None, None
    kind = recommended_exit(data.eligible, data.components)
    return kind, recommendation_reason(kind, data.rule_set, data.score) if kind else None


def recommendation_reason(kind: ExitKind, rule_set: str, score: float) -> str:
    """Why the exit is recommended, for the operator who confirms it (codes and numbers only)."""
    why = ("no eligible component is left" if kind == "alamiah"
           else f"not eligible although components remain: deprivation score {score:g} is below the threshold")
    return f"{why} (rule set {rule_set})"[:MAX_REASON]


def invariant_violations(enrolments: Mapping[str, Enrolment], programmes: Mapping[str, Programme] | None = None
                         ) -> list[str]:
    """What is wrong with a household's enrolments (nothing, when every change went through `transition`)."""
    programmes = PROGRAMMES if programmes is None else programmes
    wrong = []
    for code, e in enrolments.items():
        if e.programme != code:
            wrong.append(f"{code}: filed under another programme")
        if (e.status == "exited") != (e.exit_kind is not None):
            wrong.append(f"{code}: an exit kind without an exit, or an exit without its kind")
        if e.status == "exited" and not e.reason:
            wrong.append(f"{code}: an exit without its reason")
    held = [code for code, e in enrolments.items() if e.status in HELD]
    wrong += [f"{a} and {b} exclude each other and both are held"
              for i, a in enumerate(held) for b in held[i + 1:] if exclusive(a, b, programmes)]
    return wrong

