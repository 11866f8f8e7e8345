"""OPD agencies and their data profiles: the fields of an event an agency may see."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

AGENCY_CODE = r"^[a-z][a-z0-9-]{1,63}$"

# A profile is a set of dotted paths into an event's data: "eligible", "member_counts.toddlers".
# Naming an object ("member_counts") grants all of its fields.
Profile = frozenset[str]

EDUCATION_PROFILE: Profile = frozenset({
    "household_id",
    "programme",
    "region_code",
    "eligible",
    "member_counts.children_entering_sma",
    "member_counts.school_children",
})
HEALTH_PROFILE: Profile = frozenset({
    "household_id",
    "programme",
    "region_code",
    "eligible",
    "member_counts.pregnant",
    "member_counts.toddlers",
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


def minimise(payload: Mapping[str, Any], profile: Iterable[str]) -> dict[str, Any]:
    """Only the fields of `payload` that `profile` names, nested as in `payload`."""
    return _prune(payload, _grant_tree(profile))


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
    for key, grant in tree.items():
        if key not in value:
            continue
        if grant is _WHOLE:
            kept[key] = value[key]
        elif isinstance(value[key], Mapping):
            kept[key] = _prune(value[key], grant)
    return kept
