"""The programmes the registry serves, as configuration: each with its funder, its regions and its rules of
exclusivity, read from a JSON file (`programmes.json` beside the package, or the file the setting
`EJSIKA_PROGRAMMES_FILE` names).

A new programme, a new region or a new rule of exclusivity is a change of that file, not of the code.
Two kinds of exclusivity are kept:

- `exclusive_with`: programmes of this registry a family may not be active (or suspended) in at the same
  time. Enforced when an enrolment is activated (`domain.enrolment`); symmetric: either programme naming
  the other is enough.
- `excludes_national`: national programmes (e.g. PKH) whose recipients may not be active here. Kept as
  data only: the registry does not know yet who receives them (a future welfare field or an agency's
  answer will), so nothing enforces it today.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

DEFAULT_FILE = Path(__file__).parent.parent / "programmes.json"

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,31}$")]
RegionPrefix = Annotated[str, StringConstraints(pattern=r"^\d{2,10}$")]


class Programme(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    name: str = Field(min_length=1, max_length=200)
    funder: str = Field(min_length=1, max_length=200, description="Who pays, e.g. APBD Provinsi Banten.")
    region_prefixes: tuple[RegionPrefix, ...] = Field(
        min_length=1, description="The Kemendagri codes (province, regency/city, ...) it pays in.")
    exclusive_with: tuple[Code, ...] = Field(
        default=(), description="Programmes of this registry a family may not be active in at the same time.")
    excludes_national: tuple[str, ...] = Field(
        default=(),
        description="National programmes (e.g. PKH) whose recipients may not be active here; not enforced yet.")


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    programmes: tuple[Programme, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        codes = [p.code for p in self.programmes]
        if len(set(codes)) != len(codes):
            raise ValueError("a programme code appears twice")
        for programme in self.programmes:
            unknown = set(programme.exclusive_with) - set(codes)
            if unknown:
                raise ValueError(f"{programme.code}: exclusive_with names unknown programmes {sorted(unknown)}")
            if programme.code in programme.exclusive_with:
                raise ValueError(f"{programme.code}: a programme cannot exclude itself")
        return self


def load(path: Path = DEFAULT_FILE) -> dict[str, Programme]:
    """The programmes of a file, by code; ValueError (pydantic's) when the file breaks the rules above."""
    catalogue = Catalogue.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    return {p.code: p for p in catalogue.programmes}


#: The programmes in force, by code. One dict for the process, filled from the default file at import
#: and replaced in place by `use`, so that every module holding it sees the same programmes.
PROGRAMMES: dict[str, Programme] = load()


def use(path: Path | None) -> None:
    """Serve the programmes of `path` from now on (None: the default file)."""
    loaded = load(path or DEFAULT_FILE)
    PROGRAMMES.clear()
    PROGRAMMES.update(loaded)


def exclusive(a: str, b: str, programmes: Mapping[str, Programme] | None = None) -> bool:
    """Whether a family may not be active in both `a` and `b` at once (either one says so)."""
    programmes = PROGRAMMES if programmes is None else programmes
    first, second = programmes.get(a), programmes.get(b)
    return a != b and ((first is not None and b in first.exclusive_with)
                       or (second is not None and a in second.exclusive_with))
