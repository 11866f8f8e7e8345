"""Events emitted by registry about households (KPM) and their members."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field, ValidationInfo, field_validator

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


# Version 2 and the events of a household's changes. Every one carries the household's `version`
# after the change: a consumer can refuse to apply an older state over a newer one.

NikStatus = Literal["verified", "pending", "unmatched"]
HealthInsurance = Literal["pbi_jkn", "jkn_contributory", "none"]


class HouseholdMember(Contract):
    """A member as the registry keeps them: with an id of their own, and maybe without a NIK yet."""

    member_id: UUID = Field(description="The registry's id of this membership; stable while the person stays.")
    nik_status: NikStatus = Field(
        default="verified",
        description="verified: the NIK is known; pending: none yet (a newborn); unmatched: not matched with Dukcapil.")
    nik: Nik | None = Field(default=None, validate_default=True,
                            description="Absent while the NIK is pending (a newborn) or unknown.")
    name: str = Field(min_length=1, max_length=200)
    sex: Literal["F", "M"]
    birth_date: date
    relation: Relation
    in_school: bool = False
    pregnant: bool = False
    disability: bool = False
    health_insurance: HealthInsurance | None = Field(
        default=None, exclude_if=lambda cover: cover is None,
        description="The member's JKN cover: pbi_jkn (contributions paid by the state), jkn_contributory, or none "
                    "(outside JKN). Health data. Left out when not recorded.")
    quality_flags: tuple[str, ...] = Field(
        default=(), exclude_if=lambda flags: not flags,
        description="Set by the registry, for an operator to review, e.g. nik_birth_date_mismatch. Left out when none.")

    @field_validator("nik")
    @classmethod
    def _nik_matches_status(cls, nik: str | None, info: ValidationInfo) -> str | None:
        status = info.data.get("nik_status")
        if status == "verified" and nik is None:
            raise ValueError("a member whose NIK is verified needs one; say nik_status pending or unmatched")
        if status == "pending" and nik is not None:
            raise ValueError("a member whose NIK is pending has none yet")
        return nik


class HouseholdRegisteredDataV2(Contract):
    household_id: UUID
    version: int = Field(default=1, ge=1, description="The household's version: 1 at registration.")
    programme: ProgrammeCode
    region_code: VillageCode
    kk_number: KkNumber
    address: str = Field(max_length=500)
    members: list[HouseholdMember] = Field(min_length=1)
    welfare: WelfareIndicators
    pendamping_id: str | None = Field(default=None, max_length=64)
    split_from: UUID | None = Field(default=None, description="The household this one was split from, if any.")


class HouseholdRegisteredV2(Event):
    """v2: members have an id and may lack a NIK (v1 readers require one, so this is a new version)."""

    event_type: ClassVar[str] = "household.registered"
    version: ClassVar[int] = 2
    type: Literal["household.registered"] = "household.registered"
    dataversion: Literal[2] = 2
    data: HouseholdRegisteredDataV2


HouseholdField = Literal["region_code", "kk_number", "address", "welfare", "pendamping_id"]


class HouseholdUpdatedData(Contract):
    household_id: UUID
    version: int = Field(ge=1)
    changed: list[HouseholdField] = Field(min_length=1, description="The fields that changed; their new values follow.")
    region_code: VillageCode | None = None
    kk_number: KkNumber | None = None
    address: str | None = Field(default=None, max_length=500)
    welfare: WelfareIndicators | None = None
    pendamping_id: str | None = Field(default=None, max_length=64)


class HouseholdUpdated(Event):
    event_type: ClassVar[str] = "household.updated"
    version: ClassVar[int] = 1
    type: Literal["household.updated"] = "household.updated"
    dataversion: Literal[1] = 1
    data: HouseholdUpdatedData


JoinReason = Literal["birth", "marriage_in", "moved_in", "correction"]
EndKind = Literal["died", "married_out", "moved_out", "correction"]


class MemberAddedData(Contract):
    household_id: UUID
    version: int = Field(ge=1)
    member: HouseholdMember
    reason: JoinReason
    effective_date: date


class MemberAdded(Event):
    event_type: ClassVar[str] = "member.added"
    version: ClassVar[int] = 1
    type: Literal["member.added"] = "member.added"
    dataversion: Literal[1] = 1
    data: MemberAddedData


class MemberUpdatedData(Contract):
    household_id: UUID
    version: int = Field(ge=1)
    member: HouseholdMember = Field(description="The member as they are now.")
    changed: list[str] = Field(min_length=1, description="The member's fields that changed, e.g. in_school, nik.")


class MemberUpdated(Event):
    event_type: ClassVar[str] = "member.updated"
    version: ClassVar[int] = 1
    type: Literal["member.updated"] = "member.updated"
    dataversion: Literal[1] = 1
    data: MemberUpdatedData


class MemberEndedData(Contract):
    household_id: UUID
    version: int = Field(ge=1)
    member_id: UUID
    kind: EndKind
    effective_date: date


class MemberEnded(Event):
    event_type: ClassVar[str] = "member.ended"
    version: ClassVar[int] = 1
    type: Literal["member.ended"] = "member.ended"
    dataversion: Literal[1] = 1
    data: MemberEndedData


class MemberMovedData(Contract):
    """Keyed by the household the member joins; the one they left is named with its new version."""

    household_id: UUID
    version: int = Field(ge=1)
    from_household_id: UUID
    from_version: int = Field(ge=1)
    previous_member_id: UUID = Field(description="The member's id in the household they left.")
    member: HouseholdMember = Field(description="The member in the household they joined, with a new id.")
    effective_date: date


class MemberMoved(Event):
    event_type: ClassVar[str] = "member.moved"
    version: ClassVar[int] = 1
    type: Literal["member.moved"] = "member.moved"
    dataversion: Literal[1] = 1
    data: MemberMovedData


class RelationChange(Contract):
    member_id: UUID
    relation: Relation


class HeadChangedData(Contract):
    household_id: UUID
    version: int = Field(ge=1)
    head_member_id: UUID
    previous_head_member_id: UUID
    relations: list[RelationChange] = Field(description="Every member whose relation to the head changed.")
    kk_number: KkNumber = Field(description="The household's No. KK now (a new head usually means a new card).")


class HeadChanged(Event):
    event_type: ClassVar[str] = "household.head_changed"
    version: ClassVar[int] = 1
    type: Literal["household.head_changed"] = "household.head_changed"
    dataversion: Literal[1] = 1
    data: HeadChangedData


class HouseholdSplitData(Contract):
    """Keyed by the household split; the new one follows as its own household.registered (v2)."""

    household_id: UUID
    version: int = Field(ge=1)
    new_household_id: UUID
    member_ids: list[UUID] = Field(min_length=1, description="The members who left for the new household.")


class HouseholdSplit(Event):
    event_type: ClassVar[str] = "household.split"
    version: ClassVar[int] = 1
    type: Literal["household.split"] = "household.split"
    dataversion: Literal[1] = 1
    data: HouseholdSplitData


EnrolmentStatus = Literal["candidate", "active", "suspended", "exited"]
ExitKind = Literal["mandiri", "alamiah", "paksa"]


class EnrolmentChangedData(Contract):
    household_id: UUID
    version: int = Field(ge=1)
    programme: ProgrammeCode
    region_code: VillageCode
    status: EnrolmentStatus
    previous_status: EnrolmentStatus | None = Field(description="None when the household enters the programme.")
    exit_kind: ExitKind | None = Field(default=None, description="mandiri, alamiah or paksa, when exited.")
    reason: str | None = Field(default=None, max_length=500)
    effective_date: date


class EnrolmentChanged(Event):
    event_type: ClassVar[str] = "enrolment.changed"
    version: ClassVar[int] = 1
    type: Literal["enrolment.changed"] = "enrolment.changed"
    dataversion: Literal[1] = 1
    data: EnrolmentChangedData


class MemberFlaggedData(Contract):
    household_id: UUID
    version: int = Field(ge=1)
    member_id: UUID
    quality_flags: list[str] = Field(min_length=1, description="What an operator should review; never the data itself.")


class MemberFlagged(Event):
    event_type: ClassVar[str] = "member.flagged"
    version: ClassVar[int] = 1
    type: Literal["member.flagged"] = "member.flagged"
    dataversion: Literal[1] = 1
    data: MemberFlaggedData
