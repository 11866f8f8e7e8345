"""Registering a household: every check a registration must pass, and the event it raises."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from ejsika_contracts import HouseholdRegistered, HouseholdRegisteredData

from .identifiers import InvalidIdentifier, check_kk, read_nik
from .regions import RegionError, check_village_code, programme_for

SOURCE = "registry"


class RegistrationRejected(ValueError):
    """The registration breaks a rule; the message names the field, never a person's data."""


def check_registration(data: HouseholdRegisteredData, today: date | None = None) -> None:
    try:
        check_village_code(data.region_code)
        programme_for(data.programme, data.region_code)
        check_kk(data.kk_number, today)
    except (RegionError, InvalidIdentifier) as error:
        raise RegistrationRejected(str(error)) from None
    heads = sum(1 for m in data.members if m.relation == "head")
    if heads != 1:
        raise RegistrationRejected(f"a household needs exactly one head, got {heads}")
    seen: set[str] = set()
    for position, member in enumerate(data.members, start=1):
        if member.nik in seen:
            raise RegistrationRejected(f"member {position}: NIK repeated within the household")
        seen.add(member.nik)
        try:
            facts = read_nik(member.nik, today)
        except InvalidIdentifier as error:
            raise RegistrationRejected(f"member {position}: {error}") from None
        if facts.birth_date != member.birth_date:
            raise RegistrationRejected(f"member {position}: birth_date does not match the NIK")
        if facts.sex != member.sex:
            raise RegistrationRejected(f"member {position}: sex does not match the NIK")
        if member.pregnant and member.sex != "F":
            raise RegistrationRejected(f"member {position}: only a woman can be pregnant")


def register(data: HouseholdRegisteredData, correlation_id: UUID, today: date | None = None) -> HouseholdRegistered:
    check_registration(data, today)
    return HouseholdRegistered(
        source=SOURCE, subject=str(data.household_id), correlation_id=correlation_id, data=data
    )
