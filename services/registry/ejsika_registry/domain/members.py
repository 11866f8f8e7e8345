"""The rules of a family's changing membership: who may join, leave, move, head it or split off.

Pure: each rule takes the household's active members as the registry keeps them (by member id, the
values as `households.member_state` gives them) and answers the violations, each naming the field
of the request and the rule, never a value. A household always keeps exactly one head and at least
one member: the head is replaced by a head change, never by ending or moving them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError

from ejsika_contracts import HouseholdMember

from .registration import Violation, check_member

Members = Mapping[str, Mapping[str, Any]]  # the active members, by member id

HEAD = "head"
# What a correction may change; the relation to or from the head changes with the head.
CORRECTABLE = ("name", "sex", "birth_date", "nik", "nik_status", "in_school", "pregnant", "disability",
               "health_insurance", "relation")


def as_member(state: Mapping[str, Any]) -> HouseholdMember:
    """A stored member (JSON values) as the event's model."""
    return HouseholdMember.model_validate(dict(state))


def head_of(members: Members) -> str | None:
    return next((member_id for member_id, m in members.items() if m["relation"] == HEAD), None)


def check_effective_date(effective_date: date, born: date, today: date,
                         field: str = "effective_date") -> list[Violation]:
    """A change takes effect on a day that has come, and not before the person was born."""
    if effective_date > today:
        return [Violation(field, "effective_date", "effective_date cannot lie in the future")]
    if effective_date < born:
        return [Violation(field, "effective_date", "effective_date cannot lie before the member's birth")]
    return []


def check_addition(member: HouseholdMember, members: Members, effective_date: date, today: date,
                   at: str = "member") -> tuple[tuple[str, ...], list[Violation]]:
    """A member joining (a birth, a marriage in): their data-quality flags and the rules they break."""
    flags, broken = check_member(member, today, at)
    if member.relation == HEAD and head_of(members) is not None:
        broken.append(Violation(f"{at}.relation", "one_head",
                                "the household has a head: change the head instead of adding another"))
    if member.nik is not None and any(m["nik"] == member.nik for m in members.values()):
        broken.append(Violation(f"{at}.nik", "nik_repeated", "NIK repeated within the household"))
    broken.extend(check_effective_date(effective_date, member.birth_date, today))
    return flags, broken


def corrected(current: Mapping[str, Any], given: Mapping[str, Any], members: Members, today: date
              ) -> tuple[HouseholdMember | None, list[Violation]]:
    """The member with the corrections `given` (only the fields sent), its flags recomputed; or the
    rules it would break (and None)."""
    broken: list[Violation] = []
    relation = given.get("relation", current["relation"])
    if relation != current["relation"] and HEAD in (relation, current["relation"]):
        broken.append(Violation("relation", "head_change",
                                "the relation to or from the head changes with the head (POST .../head)"))
    wanted = {**current, **given}
    if given.get("nik") is not None and "nik_status" not in given and current["nik_status"] == "pending":
        wanted["nik_status"] = "verified"  # a newborn's NIK, given later
    try:
        member = HouseholdMember.model_validate({**wanted, "quality_flags": ()})
    except ValidationError:
        # The only rule the model adds to the schema the request passed: a NIK agrees with its status.
        return None, [*broken, Violation("nik_status", "nik_status",
                                         "a verified NIK needs the NIK, a pending one has none yet")]
    flags, member_broken = check_member(member, today, "member")
    broken.extend(Violation(v.field.removeprefix("member."), v.rule, v.reason) for v in member_broken)
    if member.nik is not None and any(m["nik"] == member.nik for member_id, m in members.items()
                                      if member_id != str(current["member_id"])):
        broken.append(Violation("nik", "nik_repeated", "NIK repeated within the household"))
    if broken:
        return None, broken
    return member.model_copy(update={"quality_flags": flags}), []


def check_departure(member_id: str, members: Members, field: str = "member_id") -> list[Violation]:
    """Whether a member may leave: never the last one, never the head while others remain."""
    if len(members) == 1:
        return [Violation(field, "last_member", "the last member of a household cannot leave it")]
    if members[member_id]["relation"] == HEAD:
        return [Violation(field, "head_ends", "the head cannot leave while others remain: change the head first")]
    return []


def check_end(member_id: str, members: Members, effective_date: date, today: date) -> list[Violation]:
    """A membership ending (a death, a marriage out, a move away, a correction)."""
    born = date.fromisoformat(members[member_id]["birth_date"])
    return [*check_departure(member_id, members), *check_effective_date(effective_date, born, today)]


def check_move(member_id: str, source: Members, target: Members, relation: str, effective_date: date,
               today: date) -> list[Violation]:
    """A member moving from `source` to `target`, taking `relation` to the target's head."""
    broken = check_end(member_id, source, effective_date, today)
    if relation == HEAD and head_of(target) is not None:
        broken.append(Violation("relation", "one_head", "the target household has a head"))
    return broken


@dataclass(frozen=True)
class HeadChange:
    previous_head: str
    relations: dict[str, str]  # every member whose relation changes (the new head included): the new relation


def check_head_change(members: Members, new_head: str, relations: Sequence[tuple[str, str]]
                      ) -> tuple[HeadChange | None, list[Violation]]:
    """A new head: `relations` (member id, relation to the new head) must name the old head and may
    name any other member whose relation changes."""
    broken: list[Violation] = []
    previous = head_of(members)
    if new_head not in members:
        broken.append(Violation("member_id", "member", "not an active member of this household"))
    elif new_head == previous:
        broken.append(Violation("member_id", "head", "the member is the head already"))
    seen: set[str] = set()
    for i, (member_id, relation) in enumerate(relations):
        at = f"relations[{i}]"
        if member_id not in members:
            broken.append(Violation(f"{at}.member_id", "member", "not an active member of this household"))
        elif member_id == new_head:
            broken.append(Violation(f"{at}.member_id", "member", "the new head's relation is head"))
        elif member_id in seen:
            broken.append(Violation(f"{at}.member_id", "repeated", "member named twice"))
        if relation == HEAD:
            broken.append(Violation(f"{at}.relation", "one_head", "a household has one head: the new one"))
        seen.add(member_id)
    if previous is not None and previous != new_head and previous not in seen:
        broken.append(Violation("relations", "head_relation", "say the old head's relation to the new head"))
    if broken:
        return None, broken
    wanted = {new_head: HEAD, **dict(relations)}
    return HeadChange(previous, {m: r for m, r in wanted.items() if members[m]["relation"] != r}), []


def check_split(members: Members, leaving: Sequence[str], new_head: str, relations: Sequence[tuple[str, str]]
                ) -> tuple[list[tuple[int, str, str]], list[Violation]]:
    """The members leaving for a new household: (index in `leaving`, member id, relation in the new
    household), its head first; or the rules the split breaks."""
    broken: list[Violation] = []
    seen: set[str] = set()
    for i, member_id in enumerate(leaving):
        if member_id not in members:
            broken.append(Violation(f"member_ids[{i}]", "member", "not an active member of this household"))
        elif member_id in seen:
            broken.append(Violation(f"member_ids[{i}]", "repeated", "member named twice"))
        elif members[member_id]["relation"] == HEAD:
            broken.append(Violation(f"member_ids[{i}]", "head_ends",
                                    "the head stays in the household split: change the head first"))
        seen.add(member_id)
    if seen >= set(members):
        broken.append(Violation("member_ids", "split_all", "at least one member stays in the household"))
    if new_head not in seen:
        broken.append(Violation("member_id", "member", "the new household's head must be one of member_ids"))
    given: dict[str, str] = {}
    for i, (member_id, relation) in enumerate(relations):
        if member_id not in seen or member_id == new_head:
            broken.append(Violation(f"relations[{i}].member_id", "member",
                                    "name a member leaving for the new household, other than its head"))
        if relation == HEAD:
            broken.append(Violation(f"relations[{i}].relation", "one_head", "the new household's head is member_id"))
        given[member_id] = relation
    if broken:
        return [], broken
    order = sorted(range(len(leaving)), key=lambda i: leaving[i] != new_head)  # head first, then as given
    return [(i, leaving[i], HEAD if leaving[i] == new_head else given.get(leaving[i], members[leaving[i]]["relation"]))
            for i in order], []
