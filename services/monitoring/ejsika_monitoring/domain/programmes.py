"""How monitoring follows each programme, as configuration: how often an active family is visited,
how soon after its activation the first visit is due, the period of the verification of commitments
(verifikasi komitmen) and its thresholds. Read from a JSON file (`programmes.json` beside the package, or
the file the setting `EJSIKA_PROGRAMMES_FILE` names).

The defaults are PKH's (DOMAIN.md): a monthly visit, school attendance of at least 85 % for children
7-21, toddlers (0-59 months) weighed and immunised; a family is escalated after three periods in a row
of non-compliance. A programme missing from the file is followed with these defaults, so a new
programme of the registry is never left unscheduled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

DEFAULT_FILE = Path(__file__).parent.parent / "programmes.json"

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,31}$")]


class Commitments(BaseModel):
    """The thresholds of the verification of commitments; read by the verification as well."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    school_attendance_min: float = Field(0.85, ge=0, le=1, description="Days present / school days, at least.")
    school_age: tuple[int, int] = Field((7, 21), description="Ages (years, inclusive) with a school commitment.")
    toddler_age_months: tuple[int, int] = Field((0, 59), description="Ages (months, inclusive) of a toddler.")
    escalate_after_periods: int = Field(3, ge=1, description="Consecutive non-compliant periods that escalate.")

    @model_validator(mode="after")
    def _ranges(self) -> Commitments:
        for name in ("school_age", "toddler_age_months"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high")
        return self


class MonitoredProgramme(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    visit_interval_days: int = Field(30, ge=1, le=366, description="An active family is visited every N days.")
    first_visit_within_days: int = Field(14, ge=0, le=366, description="The first visit after its activation.")
    verification_period_months: int = Field(1, ge=1, le=12)
    commitments: Commitments = Commitments()


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    programmes: tuple[MonitoredProgramme, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        codes = [p.code for p in self.programmes]
        if len(set(codes)) != len(codes):
            raise ValueError("a programme code appears twice")
        return self


def parse(text: str) -> dict[str, MonitoredProgramme]:
    """The programmes of a file's text, by code; ValueError (pydantic's) when it breaks the rules above."""
    return {p.code: p for p in Catalogue.model_validate(json.loads(text)).programmes}


def load(path: Path = DEFAULT_FILE) -> dict[str, MonitoredProgramme]:
    return parse(Path(path).read_text(encoding="utf-8"))


#: The programmes in force, by code: one dict for the process, replaced in place by `use`.
PROGRAMMES: dict[str, MonitoredProgramme] = load()


def use(path: Path | None) -> None:
    """Follow the programmes of `path` from now on (None: the default file)."""
    loaded = load(path or DEFAULT_FILE)
    PROGRAMMES.clear()
    PROGRAMMES.update(loaded)


def programme(code: str) -> MonitoredProgramme:
    """The configuration of `code`, or the defaults for a programme the file does not name."""
    return PROGRAMMES.get(code) or MonitoredProgramme(code=code)
