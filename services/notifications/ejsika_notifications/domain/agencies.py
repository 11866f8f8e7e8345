"""OPD agencies and their data profiles: the exact fields of a family and its members an agency may receive."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

AGENCY_CODE = r"^[a-z][a-z0-9-]{1,63}$"

# A profile is a set of dotted paths into the payload an agency receives: "region_code",
# "member_counts.toddlers", "members.nik". Naming an object ("member_counts") grants all of its
# fields; naming a field of the objects of a list ("members.name") grants it in each of them.
Profile = frozenset[str]

# What the family projection can add to any notification (see domain/families.py).
FAMILY_FIELDS = frozenset({"region_code", "programme", "enrolment_status"})
# The members a notification is about, one object each. Their `reference` (the agency's pseudonym
# of the member) comes with any other field of theirs, so that an answer can name the member.
MEMBER_FIELDS = frozenset({"reference", "nik", "name", "birth_date", "age", "sex", "relation", "in_school",
                           "school_level", "health_insurance"})
MEMBER_PATHS = frozenset({"members", *(f"members.{f}" for f in MEMBER_FIELDS)})
# Compliance with a commitment is personal data of its domain (antenatal care and a toddler's
# growth are health data): an agency hears of a commitment's verification or escalation, whatever
# the fields it may see, only if its profile names the commitment too.
COMMITMENT_GRANTS = frozenset({"compliance.school", "compliance.antenatal", "compliance.toddler"})

EDUCATION_PROFILE: Profile = frozenset({
    "region_code", "programme", "enrolment_status",
    # the child
    "members.nik", "members.name", "members.birth_date", "members.school_level", "members.in_school",
    # schooling facts: the escalation of a dropout risk, the school year of a child entering SMA
    "compliance.school", "commitment", "kind", "consecutive_periods", "period_end", "school_year", "entering_school_year",
    "eligible", "member_counts.school_children", "member_counts.children_entering_sma",
})
HEALTH_PROFILE: Profile = frozenset({
    "region_code", "programme", "enrolment_status",
    # the mother or the toddler
    "members.nik", "members.name", "members.birth_date", "members.sex", "members.relation",
    "members.health_insurance", "year", "compliance.antenatal", "compliance.toddler", "commitment", "kind", "consecutive_periods", "period_end",
    "observations.antenatal", "observations.toddlers",
    "eligible", "member_counts.pregnant", "member_counts.toddlers",
})


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    profile: Profile


EDUCATION = Agency("dinas-pendidikan", "Dinas Pendidikan Provinsi Banten", EDUCATION_PROFILE)
HEALTH = Agency("dinas-kesehatan", "Dinas Kesehatan Provinsi Banten", HEALTH_PROFILE)


def field_paths(model: type[BaseModel]) -> frozenset[str]:
    """Every dotted path of `model`, descending into nested models but not into lists."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        paths.add(name)
        nested = _model_in(info.annotation)
        if nested is not None:
            paths.update(f"{name}.{sub}" for sub in field_paths(nested))
    return frozenset(paths)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # Optional[Model]
        for arg in typing.get_args(annotation):
            if (found := _model_in(arg)) is not None:
                return found
    return None


def unknown_fields(profile: Iterable[str], known: frozenset[str]) -> list[str]:
    return sorted(set(profile) - known)


_WHOLE = object()  # marks a path granted with everything below it


def granted(profile: Iterable[str]) -> frozenset[str]:
    """The profile with what comes with it: a member's reference comes with any field of theirs."""
    names = frozenset(profile)
    return names | {"members.reference"} if names & MEMBER_PATHS else names


def grants(profile: Iterable[str], path: str) -> bool:
    """Whether `profile` lets the value at dotted `path` leave (the path or an object above it)."""
    names = granted(profile)
    parts = path.split(".")
    return any(".".join(parts[:n]) in names for n in range(1, len(parts) + 1))


def minimise(payload: Mapping[str, Any], profile: Iterable[str]) -> dict[str, Any]:
    """Only the fields of `payload` that `profile` names, nested as in `payload`."""
    return _prune(payload, _grant_tree(granted(profile)))


def _grant_tree(profile: Iterable[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    # Shorter paths first, so a granted object is never narrowed by a later path below it.
    for path in sorted(set(profile), key=lambda p: p.count(".")):
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if node is _WHOLE:
                break
        else:
            node[leaf] = _WHOLE
    return tree


def _prune(value: Mapping[str, Any], tree: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key in value:  # in the payload's order
        if (grant := tree.get(key)) is None:
            continue
        if grant is _WHOLE:
            kept[key] = value[key]
        elif isinstance(value[key], Mapping):
            kept[key] = _prune(value[key], grant)
        elif isinstance(value[key], list):  # the named fields of each object of the list
            items = [_prune(item, grant) for item in value[key] if isinstance(item, Mapping)]
            if any(items):
                kept[key] = items
    return kept
