"""Rule sets: what an assessment weighs and pays is data, versioned per programme.

A rule set is a JSON document (the defaults live in `ejsika_eligibility/rule_sets/`, an admin may
load more over HTTP). `load(document)` is the one gate: it refuses any document whose score would
not be a plain sum on 0-100, naming each fault by its field path and rule, so that every stored
version can be explained to a family and recomputed by an auditor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ejsika_contracts.events.household import WelfareIndicators

DEFAULTS = Path(__file__).parent.parent / "rule_sets"
TOTAL_POINTS = 100
DESIL_CUTS = 9  # ten desil, nine boundaries between them
MAX_VERSION = 2**31 - 1  # stored as a PostgreSQL integer

# The indicators a rule set may weigh: the fields of WelfareIndicators, numeric ones scored by bands.
INDICATORS: dict[str, bool] = {  # name -> numeric
    name: any(t in (int, float) for t in get_args(field.annotation))
    for name, field in WelfareIndicators.model_fields.items()
}


@dataclass(frozen=True)
class RuleError:
    field: str
    rule: str
    reason: str


class InvalidRuleSet(ValueError):
    """A document that is not a rule set; `errors` names every fault found."""

    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = errors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(_Strict):
    """Values v with from <= v < below earn `points`; an absent bound is open."""

    from_: float | None = Field(default=None, alias="from", ge=0)
    below: float | None = Field(default=None, gt=0)
    points: int = Field(ge=0, le=TOTAL_POINTS)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def holds(self, value: float) -> bool:
        return (self.from_ is None or value >= self.from_) and (self.below is None or value < self.below)


class Indicator(_Strict):
    weight: int | None = Field(default=None, ge=0, le=TOTAL_POINTS,
                               description="Points of a deprivation observed true (boolean indicators).")
    bands: tuple[Band, ...] | None = Field(default=None, min_length=1,
                                           description="Points by value (numeric indicators), contiguous.")

    @property
    def most(self) -> int:
        return self.weight if self.bands is None else max(b.points for b in self.bands)

    def points(self, value: bool | float | None) -> int:
        if value is None:
            return 0
        if self.bands is None:
            return self.weight if value is True else 0
        return next((b.points for b in self.bands if b.holds(float(value))), 0)


class Entry(_Strict):
    max_desil: int = Field(ge=1, le=10, description="Eligible from desil 1 up to this one.")


class Graduation(_Strict):
    min_desil: int = Field(ge=1, le=10, description="A family this prosperous or more may graduate (mandiri)...")
    consecutive: int = Field(ge=1, le=24, description="...when so in this many consecutive assessments.")


MEMBER_CONDITIONS = ("age_from", "age_to", "pregnant", "disability", "in_school", "sex")


class MemberCondition(_Strict):
    """What a member must be to earn a component; ages in whole years on the day, both bounds included."""

    age_from: int | None = Field(default=None, ge=0, le=130)
    age_to: int | None = Field(default=None, ge=0, le=130)
    pregnant: bool | None = None
    disability: bool | None = None
    in_school: bool | None = None
    sex: str | None = Field(default=None, pattern="^[FM]$")


class Component(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    amount: int = Field(ge=0, description="Rupiah a year.")
    member: MemberCondition


class RuleSet(_Strict):
    programme: str = Field(pattern=r"^[a-z][a-z0-9-]{1,31}$")
    version: int = Field(ge=1, le=MAX_VERSION)
    title: str = Field(default="", max_length=200)
    indicators: dict[str, Indicator] = Field(min_length=1)
    min_observed: int = Field(ge=0)
    desil: tuple[float, ...] = Field(description="Nine score cuts, strictly descending: desil 1 from the first.")
    entry: Entry
    graduation: Graduation
    recertify_every_months: int = Field(ge=1, le=120)
    components: tuple[Component, ...]
    max_components: int = Field(ge=1, le=20)

    @property
    def id(self) -> str:
        return f"{self.programme}.v{self.version}"

    @cached_property
    def order(self) -> tuple[str, ...]:
        return tuple(self.indicators)

    @cached_property
    def age_steps(self) -> tuple[int, ...]:
        """The ages at which a member enters (age_from) or leaves (age_to + 1) a component."""
        return tuple(sorted({a for c in self.components for a in (
            c.member.age_from, None if c.member.age_to is None else c.member.age_to + 1) if a is not None and a > 0}))

    def desil_of(self, score: float) -> int:
        return 1 + sum(score < cut for cut in self.desil)

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def load(document: Any) -> RuleSet:
    """The rule set of `document` (parsed JSON), or InvalidRuleSet naming every fault."""
    try:
        rules = RuleSet.model_validate(document)
    except ValidationError as error:
        raise InvalidRuleSet([_from_pydantic(e) for e in error.errors()]) from None
    errors = [*_indicator_errors(rules), *_desil_errors(rules), *_component_errors(rules)]
    if rules.min_observed > len(rules.indicators):
        errors.append(RuleError("min_observed", "at_most_indicators",
                                f"cannot require more than the {len(rules.indicators)} indicators weighed"))
    if errors:
        raise InvalidRuleSet(errors)
    return rules


def _from_pydantic(error: dict[str, Any]) -> RuleError:
    loc = list(error["loc"])
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if error["type"] == "extra_forbidden" and len(loc) >= 3 and loc[-2] == "member" and loc[0] == "components":
        return RuleError(path, "unknown_condition", f"a member condition is one of {', '.join(MEMBER_CONDITIONS)}")
    # pydantic's own messages never repeat the value, except in their input, which is left out
    return RuleError(path or "body", error["type"], error["msg"])


def _indicator_errors(rules: RuleSet) -> list[RuleError]:
    errors = []
    for name, indicator in rules.indicators.items():
        path = f"indicators.{name}"
        if name not in INDICATORS:
            errors.append(RuleError(path, "unknown_indicator", "not a welfare indicator the registry collects"))
            continue
        if (indicator.weight is None) == (indicator.bands is None):
            errors.append(RuleError(path, "weight_or_bands", "give either a weight or bands, not both and not neither"))
        elif INDICATORS[name] and indicator.bands is None:
            errors.append(RuleError(f"{path}.weight", "bands_required", "a numeric indicator is scored by bands"))
        elif not INDICATORS[name] and indicator.weight is None:
            errors.append(RuleError(f"{path}.bands", "weight_required", "a yes/no indicator is scored by a weight"))
        elif indicator.bands is not None:
            errors += _band_errors(f"{path}.bands", indicator.bands)
    if not errors:
        most = sum(i.most for i in rules.indicators.values())
        if most != TOTAL_POINTS:
            errors.append(RuleError("indicators", "points_total",
                                    f"weights and each band set's highest points add up to {most}, not {TOTAL_POINTS}"))
    return errors


def _band_errors(path: str, bands: tuple[Band, ...]) -> list[RuleError]:
    errors = []
    if bands[0].from_ not in (None, 0):
        errors.append(RuleError(f"{path}[0].from", "band_gap", "the first band must start at 0 or be open below"))
    if bands[-1].below is not None:
        errors.append(RuleError(f"{path}[{len(bands) - 1}].below", "band_gap", "the last band must be open above"))
    for i, band in enumerate(bands):
        if band.from_ is not None and band.below is not None and band.from_ >= band.below:
            errors.append(RuleError(f"{path}[{i}]", "band_empty", "from must be below `below`"))
        if i and (band.from_ is None or bands[i - 1].below is None or band.from_ < bands[i - 1].below):
            errors.append(RuleError(f"{path}[{i}].from", "band_overlap", "starts before the previous band ends"))
        elif i and band.from_ > bands[i - 1].below:
            errors.append(RuleError(f"{path}[{i}].from", "band_gap", "leaves values between this and the previous band"))
    return errors


def _desil_errors(rules: RuleSet) -> list[RuleError]:
    cuts = rules.desil
    if len(cuts) != DESIL_CUTS:
        return [RuleError("desil", "desil_cuts", f"give {DESIL_CUTS} cuts between the ten desil, not {len(cuts)}")]
    return [RuleError(f"desil[{i}]", "strictly_descending", "each cut must be below the one before")
            for i in range(1, len(cuts)) if cuts[i] >= cuts[i - 1]]


def _component_errors(rules: RuleSet) -> list[RuleError]:
    errors, seen = [], set()
    for i, component in enumerate(rules.components):
        if component.name in seen:
            errors.append(RuleError(f"components[{i}].name", "unique", "another component has this name"))
        seen.add(component.name)
        member = component.member
        if member.age_from is not None and member.age_to is not None and member.age_from > member.age_to:
            errors.append(RuleError(f"components[{i}].member", "age_bounds", "age_from must not exceed age_to"))
        if not member.model_fields_set:
            errors.append(RuleError(f"components[{i}].member", "unconditional", "a component needs a condition"))
    return errors


def defaults() -> list[RuleSet]:
    """The rule sets shipped with the service, every version of every programme, in file order."""
    return [load(json.loads(path.read_text())) for path in sorted(DEFAULTS.glob("*.json"))]
