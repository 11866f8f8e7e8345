"""Events emitted by registry about households (KPM) and their members."""

from datetime import date
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from ..envelope import Contract, Event
from ..values import KkNumber, Nik, ProgrammeCode, VillageCode

Relation = Literal["head", "spouse", "child", "parent", "other"]


class Member(Contract):
    nik: Nik
    name: str = Field(min_length=1, max_length=200)
    sex: Literal["F", "M"]
    birth_date: date
    relation: Relation
    in_school: bool = False
    pregnant: bool = False
    disability: bool = False
    quality_flags: tuple[str, ...] = Field(
        default=(), exclude_if=lambda flags: not flags,
        description="Set by the registry, for an operator to review: what in the member's data looks wrong "
                    "without refusing the family, e.g. nik_birth_date_mismatch, nik_sex_mismatch (the NIK "
                    "contradicts the declared birth date or sex). Left out when there is none.",
    )


class WelfareIndicators(Contract):
    """The BPS poverty criteria as observed by the pendamping; None = not observed."""

    floor_area_per_person_m2: float | None = Field(default=None, ge=0)
    earth_or_bamboo_floor: bool | None = None
    bamboo_or_unplastered_walls: bool | None = None
    no_private_toilet: bool | None = None
    no_electricity: bool | None = None
    unprotected_water: bool | None = None
    cooks_with_wood_or_kerosene: bool | None = None
    protein_at_most_weekly: bool | None = None
    one_set_of_clothes_a_year: bool | None = None
    at_most_two_meals_a_day: bool | None = None
    cannot_pay_clinic: bool | None = None
    head_low_income: bool | None = None
    head_primary_education_or_less: bool | None = None
    no_savings_over_500k: bool | None = None
    installed_power_va: int | None = Field(default=None, ge=0)


class HouseholdRegisteredData(Contract):
    household_id: UUID
    programme: ProgrammeCode
    region_code: VillageCode
    kk_number: KkNumber
    address: str = Field(max_length=500)
    members: list[Member] = Field(min_length=1)
    welfare: WelfareIndicators
    pendamping_id: str | None = Field(
        default=None, max_length=64,
        description="Identity-provider subject of the pendamping whose caseload holds the household.",
    )


class HouseholdRegistered(Event):
    event_type: ClassVar[str] = "household.registered"
    version: ClassVar[int] = 1
    type: Literal["household.registered"] = "household.registered"
    dataversion: Literal[1] = 1
    data: HouseholdRegisteredData
