"""What to queue: which subscription hears of which notice, and the minimised payload it receives.

A notice is one thing an agency may be told of a family: an event of another service, or a fact
derived here (children entering SMA). It is matched against each subscription; the payload of a
match is built from the family projection and the notice's facts, with every identifier replaced
by the agency's own pseudonym, and then cut down to the agency's profile. Nothing outside the
profile can leave: minimising is the last step, and it only keeps what the profile names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ejsika_contracts import (
    ComplianceEscalated,
    ComplianceVerified,
    EnrolmentChanged,
    Event,
    VisitRecorded,
)
from ejsika_runtime.programme_time import programme_date

from ..pseudonyms import Handed, Pseudonyms
from .agencies import minimise
from .families import Family, FamilyMember, age_on, school_level
from .subscriptions import EVENT_GRANTS, INTERNAL_FIELDS, RENAMED, Subscription


@dataclass(frozen=True)
class Notice:
    event_id: UUID  # the event's id, or the derived fact's stable id: with the subscription, the dedup key
    event_type: str
    household_id: UUID
    occurred_at: datetime
    # The event's data as an agency may see it: internal ids left out, each member id kept (as a
    # UUID) under `member`, to become the agency's reference of the member.
    facts: dict[str, Any]
    # The members the notice is about; None: the family as a whole (an eligibility decision, an
    # enrolment), whose members are sent only to a subscription that chooses them by age or school.
    member_ids: tuple[UUID, ...] | None = None


@dataclass(frozen=True)
class PlannedDelivery:
    """One notification to queue (`store.deliveries.queue`)."""

    subscription_id: UUID
    event_id: UUID
    household_id: UUID  # internal: never sent, kept for the record of processing
    payload: dict[str, Any]
    reference: str = ""  # the agency's pseudonym of the family: sent beside the payload
    event_type: str = ""
    occurred_at: datetime | None = None


def notice_of(event: Event) -> Notice:
    data = event.data.model_dump(mode="json")
    renamed = RENAMED.get(event.type, {})
    facts = _members_named({renamed.get(k, k): v for k, v in data.items() if k not in INTERNAL_FIELDS})
    return Notice(event.id, event.type, event.data.household_id, event.time, facts, _concerned(event))


def _members_named(value: Any) -> Any:
    """Member ids (anywhere below) as UUIDs under `member`, the rest as it was."""
    if isinstance(value, dict):
        return {("member" if k == "member_id" else k): (UUID(v) if k == "member_id" else _members_named(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_members_named(v) for v in value]
    return value


def _concerned(event: Event) -> tuple[UUID, ...] | None:
    data = event.data
    if isinstance(event, ComplianceEscalated):
        return (data.member_id,)
    if isinstance(event, ComplianceVerified):
        return tuple(dict.fromkeys(m.member_id for m in data.members))
    if isinstance(event, VisitRecorded):
        seen = data.observations
        ids = [*(s.member_id for s in seen.school), *(a.member_id for a in seen.antenatal),
               *(t.member_id for t in seen.toddlers), *(m.member_id for m in (seen.condition.left if seen.condition else ()))]
        return tuple(dict.fromkeys(ids))
    return None


def member_payload(member: FamilyMember, reference: str, on) -> dict[str, Any]:
    return {
        "reference": reference, "nik": member.nik, "name": member.name, "birth_date": member.birth_date.isoformat(),
        "age": age_on(member.birth_date, on), "sex": member.sex, "relation": member.relation,
        "in_school": member.in_school, "school_level": school_level(member, on),
        "health_insurance": member.health_insurance,
    }


@dataclass
class Plan:
    deliveries: list[PlannedDelivery]
    handed: list[Handed]  # every reference the payloads hand out, to resolve the agencies' answers


def plan(
    notices: Iterable[Notice], subscriptions: Sequence[Subscription], families: Mapping[UUID, Family],
    references: Pseudonyms,
) -> Plan:
    result = Plan([], [])
    for notice in notices:
        for subscription in subscriptions:
            if subscription.active and subscription.event_type == notice.event_type:
                planned = _for(subscription, notice, families.get(notice.household_id), references, result.handed)
                if planned is not None:
                    result.deliveries.append(planned)
    return result


def _for(subscription: Subscription, notice: Notice, family: Family | None, references: Pseudonyms,
         handed: list[Handed]) -> PlannedDelivery | None:
    facts = notice.facts
    grant = EVENT_GRANTS.get(notice.event_type)
    if not subscription.hears_of(facts.get("commitment")) or (grant is not None and grant not in subscription.profile):
        return None
    status = facts.get("status") if notice.event_type == EnrolmentChanged.event_type else None
    region = facts.get("region_code") or (family.region_code if family else None) or facts.get("region")
    if not subscription.filter.admits(
        region=region, programme=facts.get("programme") or (family.programme if family else None),
        enrolment_status=status or (family.enrolment_status if family else None),
        eligible=facts.get("eligible"), kind=facts.get("kind"),
    ):
        return None
    on = programme_date(notice.occurred_at)
    known = family.members if family else {}
    if notice.member_ids is None:  # about the family: its members only when the subscription chooses some
        ids = list(known) if subscription.filter.chooses_members else []
    else:
        ids = list(notice.member_ids)
    if subscription.filter.chooses_members:  # a member the projection does not know cannot be chosen
        ids = [i for i in ids if i in known and subscription.filter.admits_member(known[i], on)]
        if not ids:
            return None
    agency = subscription.agency
    reference = references.reference_of(agency, notice.household_id)
    member_refs = {i: references.member_reference_of(agency, i) for i in _member_ids(facts, ids)}
    members = [member_payload(known[i], member_refs[i], on) if i in known else {"reference": member_refs[i]}
               for i in ids]
    payload: dict[str, Any] = {}
    if family is not None:
        payload.update(region_code=family.region_code, programme=family.programme,
                       enrolment_status=family.enrolment_status)
    payload.update(_referenced(facts, member_refs))
    if "commitments" in payload:  # only the commitments the agency may hear of
        payload["commitments"] = [c for c in payload["commitments"] if subscription.hears_of(c.get("commitment"))]
    payload["members"] = members
    payload = minimise(payload, subscription.profile)
    handed.append(Handed(agency, reference, "household", notice.household_id))
    handed.extend(Handed(agency, ref, "member", i) for i, ref in member_refs.items())
    return PlannedDelivery(subscription.id, notice.event_id, notice.household_id, payload, reference,
                           notice.event_type, notice.occurred_at)


def awaits_family(notice: Notice, subscriptions: Sequence[Subscription]) -> bool:
    """Whether a subscription to the notice's event type asks what only the family can answer (the
    notice's own facts carrying no region, programme or enrolment status for it to check, or the
    subscription choosing members): without the family, such a subscription cannot be told of it
    yet, and the notice waits for the family rather than being lost to it."""
    facts = notice.facts
    status = facts.get("status") if notice.event_type == EnrolmentChanged.event_type else None
    return any(
        s.active and s.event_type == notice.event_type and (
            (s.filter.region_prefix and not (facts.get("region_code") or facts.get("region")))
            or (s.filter.programmes and not facts.get("programme"))
            or (s.filter.enrolment_statuses and not status)
            or s.filter.chooses_members)
        for s in subscriptions)


def _member_ids(facts: Any, ids: Iterable[UUID]) -> list[UUID]:
    """The members of the notice and every member named in its facts."""
    found = list(ids)

    def walk(value: Any) -> None:
        if isinstance(value, UUID):
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(facts)
    return list(dict.fromkeys(found))


def _referenced(value: Any, member_refs: Mapping[UUID, str]) -> Any:
    if isinstance(value, UUID):
        return member_refs[value]
    if isinstance(value, dict):
        return {k: _referenced(v, member_refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_referenced(v, member_refs) for v in value]
    return value


def shared_fields(payload: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths of the family's data in a payload, for the record of processing: the
    fields of each object of a list under the list's name (members.nik), each path once."""
    fields: dict[str, None] = {}
    for name, value in payload.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            fields.update(dict.fromkeys(shared_fields(value, f"{path}.")))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for item in value:
                fields.update(dict.fromkeys(shared_fields(item, f"{path}.")))
        else:
            fields[path] = None
    return list(fields)
