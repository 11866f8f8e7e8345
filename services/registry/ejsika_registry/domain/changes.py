"""The rules of a change to a registered household: what it may become, checked before anything is stored."""

from __future__ import annotations

from datetime import date
from typing import Any

from .identifiers import InvalidIdentifier, check_kk
from .regions import RegionError, check_village_code, programme_for
from .registration import Violation

# The household fields a change may set; programme is an enrolment, status comes from eligibility.
CHANGEABLE = ("region_code", "kk_number", "address", "welfare", "pendamping_id")


def check_household_fields(programme: str, fields: dict[str, Any], today: date) -> list[Violation]:
    """The rules the changed fields break (only those given are checked)."""
    broken: list[Violation] = []
    if "region_code" in fields:
        try:
            check_village_code(fields["region_code"])
            programme_for(programme, fields["region_code"])
        except RegionError as error:
            broken.append(Violation(error.field, error.rule, str(error)))
    if "kk_number" in fields:
        try:
            check_kk(fields["kk_number"], today)
        except InvalidIdentifier as error:
            broken.append(Violation("kk_number", error.rule, str(error)))
    return broken


def merged_welfare(current: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Welfare indicators as a merge patch: the indicators given replace theirs, null = not observed."""
    return {k: v for k, v in {**current, **given}.items() if v is not None}
