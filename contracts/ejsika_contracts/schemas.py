"""Frozen JSON Schemas of every event version, and the check that a change stays readable.

`python -m ejsika_contracts.schemas --write` writes a schema for each new event version, and
extends a committed one only with compatible changes (new optional fields): a breaking change is
refused there and must be a new event version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .envelope import Event
from .topics import ALL_EVENTS

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def schema_of(cls: type[Event]) -> dict[str, Any]:
    return cls.model_json_schema()


def schema_path(cls: type[Event]) -> Path:
    return SCHEMA_DIR / f"{cls.schema_name()}.json"


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What in `new` would reject, or misread, an event that was valid under `old`.

    Allowed: new optional properties, relaxed constraints we do not model. Breaking: a property
    removed or retyped, a property that becomes required, an enum or const that changes.
    """
    problems: list[str] = []
    _compare(old, new, old.get("$defs", {}), new.get("$defs", {}), "$", problems)
    return problems


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _types(node: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    node = _resolve(node, defs)
    if "anyOf" in node:
        return set().union(*(_types(option, defs) for option in node["anyOf"]))
    if "const" in node:
        return {f"const:{node['const']!r}"}
    if "enum" in node:
        return {f"enum:{value!r}" for value in node["enum"]}
    return {node.get("type", "object" if "properties" in node else "any")}


def _compare(old, new, old_defs, new_defs, path, problems) -> None:
    old, new = _resolve(old, old_defs), _resolve(new, new_defs)
    lost = _types(old, old_defs) - _types(new, new_defs)
    if lost and "any" not in _types(new, new_defs):
        problems.append(f"{path}: no longer accepts {sorted(lost)}")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{path}.{name}: removed")
        else:
            _compare(old_props[name], new_props[name], old_defs, new_defs, f"{path}.{name}", problems)
    for name in set(new.get("required", ())) - set(old.get("required", ())):
        problems.append(f"{path}.{name}: newly required")
    if "items" in old and "items" in new:
        _compare(old["items"], new["items"], old_defs, new_defs, f"{path}[]", problems)
    for option in old.get("anyOf", ()):
        option = _resolve(option, old_defs)
        match = next((o for o in new.get("anyOf", ()) if _resolve(o, new_defs).get("title") == option.get("title")), None)
        if match is not None and "properties" in option:
            _compare(option, match, old_defs, new_defs, path, problems)


def write(schema_dir: Path = SCHEMA_DIR) -> tuple[list[str], list[str]]:
    """Freeze new versions and extend committed ones compatibly; answer what was written and what was refused."""
    schema_dir.mkdir(exist_ok=True)
    written, refused = [], []
    for cls in ALL_EVENTS:
        path = schema_dir / schema_path(cls).name
        text = render(schema_of(cls))
        if path.exists():
            if path.read_text() == text:
                continue
            breaking = breaking_changes(json.loads(path.read_text()), schema_of(cls))
            if breaking:
                refused.append(f"{path.name}: {'; '.join(breaking)} (publish a new version of the event)")
                continue
        path.write_text(text)
        written.append(path.name)
    return written, refused


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python -m ejsika_contracts.schemas --write")
    written, refused = write()
    for name in written:
        print(f"wrote {name}")
    if refused:
        sys.exit("refused, breaking:\n" + "\n".join(refused))
