"""Registering a household: every check a registration must pass, and the event it raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from ejsika_contracts import HouseholdMember, HouseholdRegisteredDataV2, HouseholdRegisteredV2
from ejsika_runtime.programme_time import programme_today

from .identifiers import InvalidIdentifier, check_kk, read_nik
from .regions import RegionError, check_village_code, programme_for

SOURCE = "registry"
OLDEST_BIRTH_DATE = date(1900, 1, 1)


@dataclass(frozen=True)
class Violation:
    """A broken rule: where (`members[1].nik`), which rule, and why, never with the value."""

    field: str
    rule: str
    reason: str


class RegistrationRejected(ValueError):
    """The registration breaks one or more rules; the message names them, never a person's data."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.reason}" for v in violations))
        self.violations = tuple(violations)


def check_registration(data: HouseholdRegisteredDataV2, today: date | None = None) -> list[tuple[str, ...]]:
    """Every rule at once; the answer is the data-quality flags of each member, in order."""
    today = today or programme_today()
    broken: list[Violation] = []
    try:
        check_village_code(data.region_code)
        programme_for(data.programme, data.region_code)
    except RegionError as error:
        broken.append(Violation(error.field, error.rule, str(error)))
    try:
        check_kk(data.kk_number, today)
    except InvalidIdentifier as error:
        broken.append(Violation("kk_number", error.rule, str(error)))
    heads = sum(1 for m in data.members if m.relation == "head")
    if heads != 1:
        broken.append(Violation("members", "one_head", f"a household needs exactly one head, got {heads}"))
    seen: set[str] = set()
    flags: list[tuple[str, ...]] = []
    for index, member in enumerate(data.members):
        at = f"members[{index}]"
        if member.nik is not None and member.nik in seen:
            broken.append(Violation(f"{at}.nik", "nik_repeated", "NIK repeated within the household"))
        seen.add(member.nik)
        member_flags, member_broken = check_member(member, today, at)
        flags.append(member_flags)
        broken.extend(member_broken)
    if broken:
        raise RegistrationRejected(broken)
    return flags


def check_member(member: HouseholdMember, today: date, at: str = "member") -> tuple[tuple[str, ...], list[Violation]]:
    """The rules of one member: its data-quality flags, and the rules it breaks."""
    broken: list[Violation] = []
    flags: tuple[str, ...] = ()
    plausible = OLDEST_BIRTH_DATE <= member.birth_date <= today
    if not plausible:
        broken.append(Violation(f"{at}.birth_date", "birth_date", "birth_date must lie between 1900 and today"))
    if member.nik is not None:
        try:
            facts = read_nik(member.nik, today, born=member.birth_date if plausible else None)
        except InvalidIdentifier as error:
            broken.append(Violation(f"{at}.nik", error.rule, str(error)))
        else:
            if plausible:
                flags = facts.quality_flags(member.birth_date, member.sex)
    if member.pregnant and member.sex != "F":
        broken.append(Violation(f"{at}.pregnant", "pregnant_sex", "only a woman can be pregnant"))
    return flags, broken


def register(data: HouseholdRegisteredDataV2, correlation_id: UUID, today: date | None = None) -> HouseholdRegisteredV2:
    """The household.registered event; a member whose NIK contradicts what was declared carries its flags."""
    flags = check_registration(data, today)
    if any(flags):
        members = [m.model_copy(update={"quality_flags": f}) if f else m for m, f in zip(data.members, flags)]
        data = data.model_copy(update={"members": members})
    return HouseholdRegisteredV2(
        source=SOURCE, subject=str(data.household_id), correlation_id=correlation_id, data=data
    )
