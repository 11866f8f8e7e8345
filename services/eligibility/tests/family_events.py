"""Realistic registry and monitoring events of one family, for the tests of eligibility's inputs."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from ejsika_contracts import (
    ComplianceEscalated,
    ComplianceVerified,
    EnrolmentChanged,
    Event,
    HeadChanged,
    HouseholdRegistered,
    HouseholdRegisteredV2,
    HouseholdSplit,
    HouseholdUpdated,
    MemberAdded,
    MemberEnded,
    MemberFlagged,
    MemberMoved,
    MemberUpdated,
    VisitRecorded,
    VisitScheduled,
)

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # 09:00 WIB
POOR = {name: True for name in (
    "earth_or_bamboo_floor", "bamboo_or_unplastered_walls", "no_private_toilet", "unprotected_water",
    "cooks_with_wood_or_kerosene", "protein_at_most_weekly", "one_set_of_clothes_a_year", "at_most_two_meals_a_day",
    "cannot_pay_clinic", "head_low_income", "head_primary_education_or_less", "no_savings_over_500k")} | {
    "no_electricity": False, "floor_area_per_person_m2": 6.0, "installed_power_va": 450}


def member(relation: str = "head", birth: str = "1980-05-01", sex: str = "M", member_id: UUID | None = None,
           **flags: Any) -> dict:
    return {"member_id": str(member_id or uuid.uuid4()), "nik_status": "pending", "name": "Anggota", "sex": sex,
            "birth_date": birth, "relation": relation, **flags}


class Family:
    """One household's events, each a minute after the last, with the registry's growing version."""

    def __init__(self, household_id: UUID | None = None, programme: str = "jamsosratu",
                 region_code: str = "3672011001") -> None:
        self.id = household_id or uuid.uuid4()
        self.programme, self.region_code = programme, region_code
        self.version = 0
        self.clock = T0
        self.correlation = uuid.uuid4()

    def _event(self, cls: type[Event], data: dict, versioned: bool = True, subject: UUID | None = None) -> Event:
        self.clock += timedelta(minutes=1)
        if versioned:
            self.version += 1
            data = {"version": self.version, **data}
        return cls(source="test", subject=str(subject or self.id), correlation_id=self.correlation,
                   time=self.clock, data={"household_id": str(subject or self.id), **data})

    def registered(self, members: list[dict], welfare: dict | None = None, **extra: Any) -> HouseholdRegisteredV2:
        return self._event(HouseholdRegisteredV2, {
            "programme": self.programme, "region_code": self.region_code, "kk_number": "3672010101200001",
            "address": "Jl. Contoh 1", "members": members, "welfare": POOR if welfare is None else welfare,
            "pendamping_id": "pendamping-1", **extra})

    def registered_v1(self, members: list[dict]) -> HouseholdRegistered:
        members = [{k: v for k, v in m.items() if k not in ("member_id", "nik_status")} | {"nik": "3672014505800001"}
                   for m in members]
        return self._event(HouseholdRegistered, {
            "programme": self.programme, "region_code": self.region_code, "kk_number": "3672010101200001",
            "address": "x", "members": members, "welfare": POOR}, versioned=False)

    def updated(self, **changed: Any) -> HouseholdUpdated:
        return self._event(HouseholdUpdated, {"changed": list(changed), **changed})

    def added(self, new: dict, reason: str = "birth") -> MemberAdded:
        return self._event(MemberAdded, {"member": new, "reason": reason, "effective_date": "2026-03-01"})

    def member_updated(self, changed_member: dict, *changed: str) -> MemberUpdated:
        return self._event(MemberUpdated, {"member": changed_member, "changed": list(changed)})

    def ended(self, member_id: str, kind: str = "died") -> MemberEnded:
        return self._event(MemberEnded, {"member_id": member_id, "kind": kind, "effective_date": "2026-03-01"})

    def moved_in(self, left: Family, previous_member_id: str, new: dict) -> MemberMoved:
        left.version += 1
        return self._event(MemberMoved, {"from_household_id": str(left.id), "from_version": left.version,
                                         "previous_member_id": previous_member_id, "member": new,
                                         "effective_date": "2026-03-01"})

    def head_changed(self, head: str, previous: str, relations: list[tuple[str, str]]) -> HeadChanged:
        return self._event(HeadChanged, {"head_member_id": head, "previous_head_member_id": previous,
                                         "relations": [{"member_id": m, "relation": r} for m, r in relations],
                                         "kk_number": "3672010101200002"})

    def split(self, new_household: UUID, member_ids: list[str]) -> HouseholdSplit:
        return self._event(HouseholdSplit, {"new_household_id": str(new_household), "member_ids": member_ids})

    def enrolment(self, status: str, previous: str | None, exit_kind: str | None = None) -> EnrolmentChanged:
        return self._event(EnrolmentChanged, {
            "programme": self.programme, "region_code": self.region_code, "status": status,
            "previous_status": previous, "exit_kind": exit_kind, "reason": "test" if exit_kind else None,
            "effective_date": "2026-03-02"})

    def flagged(self, member_id: str) -> MemberFlagged:
        return self._event(MemberFlagged, {"member_id": member_id, "quality_flags": ["nik_sex_mismatch"]})

    def visit(self, school: list[tuple[str, bool]] = (), antenatal: list[str] = (),
              captured_at: datetime | None = None) -> VisitRecorded:
        at = captured_at or self.clock + timedelta(minutes=1)  # the moment of the event itself
        return self._event(VisitRecorded, {
            "visit_id": str(uuid.uuid4()), "pendamping_id": "pendamping-1", "captured_at": at.isoformat(),
            "received_at": at.isoformat(), "observations": {
                "school": [{"member_id": m, "enrolled": e, "days_present": 18 if e else 0, "school_days": 20}
                           for m, e in school],
                "antenatal": [{"member_id": m, "checked": True} for m in antenatal]}}, versioned=False)

    def scheduled(self) -> VisitScheduled:
        return self._event(VisitScheduled, {"visit_id": str(uuid.uuid4()), "kind": "monthly_session",
                                            "due_date": "2026-04-01"}, versioned=False)

    def verified(self, period_end: date, results: list[tuple[str, str, str]], revision: int = 1) -> ComplianceVerified:
        overall = ("non_compliant" if any(r == "non_compliant" for _, _, r in results)
                   else "compliant" if results else "not_verifiable")
        return self._event(ComplianceVerified, {
            "programme": self.programme, "period_start": (period_end.replace(day=1)).isoformat(),
            "period_end": period_end.isoformat(), "result": overall, "revision": revision,
            "members": [{"member_id": m, "commitment": c, "result": r} for m, c, r in results]}, versioned=False)

    def escalated(self, member_id: str, period_end: date, periods: int = 3) -> ComplianceEscalated:
        return self._event(ComplianceEscalated, {
            "programme": self.programme, "member_id": member_id, "commitment": "school",
            "kind": "school_dropout_risk", "consecutive_periods": periods, "period_end": period_end.isoformat()},
            versioned=False)
