"""Which changes wait for a decision, and whose: the propose → verify → approve rhythm social offices know
from Kemensos's SIKS-NG (DOMAIN.md).

A change that can move a family's eligibility (its welfare indicators, who belongs to it), when it
comes from the field (a pendamping's app, a visit), is a proposal until a supervisor of the area
decides it; corrections by the social office apply at once. Which kinds and fields, from whom, and
who decides are data (`approval.json` beside the package, or the file the setting
`EJSIKA_APPROVAL_RULES` names), so a programme tightens or loosens them without a release.

A change is one of the registry's kinds of change, as the history names them: `update` (household
fields; welfare is a merge patch, so its fields are the indicators given), `member_added`,
`member_ended`, `member_moved`, ...
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ejsika_runtime.auth import Role

DEFAULT_FILE = Path(__file__).parent.parent / "approval.json"
UPDATE = "update"


class Rule(BaseModel):
    """Changes of `kind` touching any of `fields` (none named: whatever they touch), made by a caller in
    one of `roles` or coming from one of `sources`, wait for an `approver`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(min_length=1, max_length=40)
    fields: frozenset[str] = Field(default=frozenset(), description="Household fields, e.g. welfare; none: any.")
    roles: frozenset[Role] = frozenset()
    sources: frozenset[str] = Field(default=frozenset(), description="Where the change comes from, e.g. visit.")
    approver: Role

    @model_validator(mode="after")
    def _someone(self) -> Rule:
        if not self.roles and not self.sources:
            raise ValueError(f"a rule of {self.kind} names no role and no source: it would hold nobody's changes")
        return self

    def holds(self, roles: Collection[str], source: str | None, kind: str, fields: Collection[str]) -> bool:
        return (kind == self.kind and (not self.fields or bool(self.fields & set(fields)))
                and (bool(self.roles & set(roles)) or source in self.sources))


class ApprovalRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str | None = Field(default=None, description="What these rules are for, for the reader of the file.")
    applies_at_once: frozenset[Role] = Field(
        description="Roles whose changes never wait (an operator's correction), whatever the rules say.")
    also_decided_by: frozenset[Role] = Field(
        default=frozenset(), description="Roles that may decide any proposal of their scope, beside its approver.")
    rules: tuple[Rule, ...] = Field(description="The first rule that holds a change names its approver.")


def load(path: Path | None = None) -> ApprovalRules:
    """The rules of a file (None: the default one); ValueError (pydantic's) when it breaks the shape above."""
    return ApprovalRules.model_validate(json.loads(Path(path or DEFAULT_FILE).read_text(encoding="utf-8")))


def needs_approval(rules: ApprovalRules, roles: Collection[str], kind: str, fields: Collection[str],
                   source: str | None = None) -> Role | None:
    """The role that must approve this change before it applies, or None when it applies at once.

    `roles` are those in which the caller reaches the household (a supervisor who is also a
    pendamping elsewhere changes a household of their area as its supervisor); `source` is where
    the change comes from (a visit has no caller's role of its own).
    """
    if set(roles) & rules.applies_at_once:
        return None
    return next((rule.approver for rule in rules.rules if rule.holds(roles, source, kind, fields)), None)


def may_decide(rules: ApprovalRules, roles: Collection[str], approver: str) -> bool:
    """Whether a caller reaching the household in `roles` may approve or reject a proposal for `approver`."""
    return approver in roles or bool(set(roles) & rules.also_decided_by)


def fields_of(kind: str, payload: Mapping[str, Any]) -> list[str]:
    """The household fields a change touches, as the rules name them (an update's fields; a member's
    change touches the members)."""
    return sorted(payload) if kind == UPDATE else []


def touched(kind: str, payload: Mapping[str, Any]) -> frozenset[str]:
    """What an update sets, welfare indicator by indicator (`welfare.no_electricity`): two updates of
    different indicators do not touch the same thing. Empty for other kinds."""
    if kind != UPDATE:
        return frozenset()
    names: set[str] = set()
    for name, value in payload.items():
        if name == "welfare" and isinstance(value, Mapping):
            names |= {f"welfare.{indicator}" for indicator in value}
        else:
            names.add(name)
    return frozenset(names)


def changed(changes: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    """What a history row changed, named as `touched` names it."""
    names: set[str] = set()
    for name, values in changes.items():
        old, new = values.get("old"), values.get("new")
        if name == "welfare" and isinstance(old, Mapping) and isinstance(new, Mapping):
            names |= {f"welfare.{k}" for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        else:
            names.add(name)
    return frozenset(names)


def overtaken(kind: str, payload: Mapping[str, Any], later: Iterable[Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """What a proposal would set that changed since it was made (the `changes` of the later history rows):
    approving it would silently overwrite someone else's change."""
    wanted = touched(kind, payload)
    return sorted(set().union(*(changed(c) & wanted for c in later)))
