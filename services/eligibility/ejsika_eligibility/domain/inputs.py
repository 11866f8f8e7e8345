"""A household's inputs, folded from the events of the registry and of monitoring (pure).

Three topics speak of a household, each in order for it (one key, one partition), but not in order
with each other: a replay may read a family's visits before its registration. So what each topic
said is kept apart (`Facts`), and the inputs of an assessment (`Inputs`) are derived from it by
rules that do not depend on which topic was read first:

- the registry's facts apply in the household's version order: an event whose version is not newer
  than the one applied changes nothing (the order guard; a redelivered or replayed event is a no-op);
- a member who moved out of a household never comes back under the same id (the registry gives the
  member a new id where they join), so the household left drops that id whenever its events come;
- a flag both sides speak of (in school, pregnant) takes the most recent word: the registry's as of
  its event's time, a visit's as of the moment it was captured;
- an escalated non-compliance stays open until a compliant verification of a later period.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
)
from ejsika_contracts.events.household import EnrolmentStatus, ExitKind, Relation, WelfareIndicators
from ejsika_contracts.events.monitoring import Commitment, ComplianceResult, EscalationKind
from ejsika_runtime.programme_time import programme_date

from .. import escalations
from ..escalations import Escalation


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MemberInputs(_Value):
    """A member as an assessment needs them: who they are (NIK, name) stays in the registry."""

    member_id: UUID
    sex: Literal["F", "M"]
    birth_date: date
    relation: Relation
    in_school: bool = False
    pregnant: bool = False
    disability: bool = False


class Inputs(_Value):
    """Everything an assessment of one household reads (`households.inputs`)."""

    household_id: UUID
    programme: str
    region_code: str
    members: list[MemberInputs]
    welfare: WelfareIndicators
    welfare_version: int = Field(description="The registry's household version at which `welfare` was last "
                                             "observed: the run towards mandiri counts these observations.")
    escalation: Escalation | None = Field(
        default=None, description="An escalated non-compliance not yet cleared: grounds for a paksa exit.")


class RegisteredMember(MemberInputs):
    """A member as the registry last said, with when it last said each flag monitoring also observes."""

    school_as_of: datetime
    pregnant_as_of: datetime


class Observed(_Value):
    value: bool
    at: datetime


class Verified(_Value):
    """The latest verification of one member's commitment."""

    member_id: UUID
    commitment: Commitment
    result: ComplianceResult
    period_end: date
    revision: int
    attendance_rate: float | None = None


class Facts(_Value):
    """What the topics said of one household so far. `version` 0: the registry's registration not seen."""

    household_id: UUID
    version: int = 0
    programme: str | None = None
    region_code: str | None = None
    pendamping_id: str | None = None
    registered_on: date | None = None
    welfare: WelfareIndicators | None = None
    welfare_version: int = 0  # the version of the registry's event that last stated the welfare
    members: tuple[RegisteredMember, ...] = ()
    departed: tuple[UUID, ...] = ()  # ids of members who moved out (never back under the same id)
    school: dict[UUID, Observed] = Field(default_factory=dict)
    pregnancy: dict[UUID, Observed] = Field(default_factory=dict)
    verified: dict[str, Verified] = Field(default_factory=dict)  # "<member_id>:<commitment>"
    escalations: dict[str, Escalation] = Field(default_factory=dict)  # "<member_id>:<commitment>"
    enrolments: dict[str, EnrolmentStatus] = Field(default_factory=dict)  # programme -> status

    @model_validator(mode="before")
    @classmethod
    def _welfare_observed(cls, values):
        # facts stored before the welfare's version was kept: as observed at the version they reached
        if isinstance(values, dict) and "welfare_version" not in values and values.get("welfare") is not None:
            values = {**values, "welfare_version": values.get("version", 0)}
        return values

    @property
    def registered(self) -> bool:
        return self.version > 0

    @property
    def enrolment_status(self) -> EnrolmentStatus | None:
        return self.enrolments.get(self.programme) if self.programme else None


@dataclass(frozen=True)
class Step:
    """One enrolment.changed, as `enrolment_steps` keeps it."""

    event_id: UUID
    household_id: UUID
    version: int
    programme: str
    region_code: str
    status: EnrolmentStatus
    previous_status: EnrolmentStatus | None
    exit_kind: ExitKind | None
    effective_date: date


@dataclass
class Folded:
    """The result of applying a batch: the facts now, and what changed."""

    facts: dict[UUID, Facts]
    changed: dict[UUID, Event] = field(default_factory=dict)  # household -> last event that changed its facts
    trail: dict[UUID, list[tuple[Event, Facts]]] = field(default_factory=dict)  # each change, in order
    steps: list[Step] = field(default_factory=list)
    unknown: list[Event] = field(default_factory=list)  # registry events of households never registered here


def from_assessed(household_id: UUID, inputs: str, version: int, at: datetime) -> Facts:
    """The facts of a household assessed before its inputs were kept from every event: its registration
    as that assessment stored it (members of a v1 registration get the ids `_registered` gives them)."""
    stored = json.loads(inputs)
    kept = ("sex", "birth_date", "relation", "in_school", "pregnant", "disability")
    members = []
    for i, m in enumerate(stored["members"]):
        member_id = UUID(m["member_id"]) if m.get("member_id") else uuid5(household_id, str(i))
        values = MemberInputs.model_validate({"member_id": member_id, **{k: m[k] for k in kept if k in m}})
        members.append(_member(member_id, values, at, at))
    version = stored.get("version", version)
    return Facts(household_id=household_id, version=version, welfare_version=version, programme=stored["programme"],
                 region_code=stored["region_code"], pendamping_id=stored.get("pendamping_id"),
                 welfare=WelfareIndicators.model_validate(stored["welfare"]), members=tuple(members))


# The inputs last derived from facts, by the identity of the facts (kept alive here, so an id is never another's):
# a batch asks for the inputs of the same facts several times (to store them, to compare, to assess), and deriving
# them made a model per member each time. Facts and inputs are immutable, so a cached answer is the answer.
_DERIVED: dict[int, tuple[Facts, Inputs | None]] = {}
_DERIVED_MOST = 4_096  # a batch names at most a thousand or so households


def inputs_of(facts: Facts) -> Inputs | None:
    """The inputs of an assessment, or None while the household's registration is not known."""
    kept = _DERIVED.get(id(facts))
    if kept is not None and kept[0] is facts:
        return kept[1]
    if len(_DERIVED) >= _DERIVED_MOST:
        _DERIVED.clear()
    derived = _DERIVED[id(facts)] = (facts, _derive(facts))
    return derived[1]


def _derive(facts: Facts) -> Inputs | None:
    if not facts.registered or facts.welfare is None:
        return None
    departed = set(facts.departed)
    members = [_effective(m, facts) for m in facts.members if m.member_id not in departed]
    return Inputs(household_id=facts.household_id, programme=facts.programme, region_code=facts.region_code,
                  members=members, welfare=facts.welfare, welfare_version=facts.welfare_version,
                  escalation=escalations.current(facts.escalations))


def compliance_of(facts: Facts) -> list[dict] | None:
    """The latest verification per member and commitment, in a stable order (`households.compliance`)."""
    if not facts.verified:
        return None
    return [facts.verified[key].model_dump(mode="json") for key in sorted(facts.verified)]


def fold(facts: dict[UUID, Facts], events: Iterable[Event]) -> Folded:
    """Apply `events` (in partition order) to the households' facts; households not in `facts` start empty."""
    out = Folded(dict(facts))
    for event in events:
        if not isinstance(event, INPUT_EVENTS):
            continue
        for household_id, after in _apply(out, event):
            if after != out.facts.get(household_id):
                out.facts[household_id] = after
                out.changed[household_id] = event
                out.trail.setdefault(household_id, []).append((event, after))
    return out


# The events that speak of a household's inputs; the others of the same topics (a visit scheduled or
# overdue) are not this service's business.
INPUT_EVENTS = (HouseholdRegistered, HouseholdRegisteredV2, HouseholdUpdated, MemberAdded, MemberUpdated, MemberEnded,
                MemberMoved, HeadChanged, HouseholdSplit, EnrolmentChanged, MemberFlagged, VisitRecorded,
                ComplianceVerified, ComplianceEscalated)


def households_of(event: Event) -> list[UUID]:
    """The households whose facts `event` may change: its subject, and the one a member left."""
    ids = [event.data.household_id]
    if isinstance(event, MemberMoved):
        ids.append(event.data.from_household_id)
    return ids


def _get(out: Folded, household_id: UUID) -> Facts:
    return out.facts.get(household_id) or Facts(household_id=household_id)


def _apply(out: Folded, event: Event) -> list[tuple[UUID, Facts]]:
    if isinstance(event, (VisitRecorded, ComplianceVerified, ComplianceEscalated)):
        facts = _get(out, event.data.household_id)
        return [(facts.household_id, _monitoring(facts, event))]
    facts = _get(out, event.data.household_id)
    if isinstance(event, (HouseholdRegistered, HouseholdRegisteredV2)):
        version = getattr(event.data, "version", 1)
        return [(facts.household_id, _registered(facts, event) if version > facts.version else facts)]
    results = []
    if isinstance(event, MemberMoved):  # the household left, whatever its version here
        left = _get(out, event.data.from_household_id)
        results.append((left.household_id, _depart(left, event.data.previous_member_id)))
    if not facts.registered:
        out.unknown.append(event)
        return results
    if event.data.version <= facts.version:
        return results
    after = _registry(facts, event, out).model_copy(update={"version": event.data.version})
    return [*results, (facts.household_id, after)]


def _registered(facts: Facts, event: HouseholdRegistered | HouseholdRegisteredV2) -> Facts:
    data, at = event.data, event.time
    if isinstance(event, HouseholdRegisteredV2):
        members = [(m.member_id, m) for m in data.members]
    else:  # v1 named no member ids: stable ones from the household and the position, the same in every replay
        members = [(uuid5(data.household_id, str(i)), m) for i, m in enumerate(data.members)]
    return facts.model_copy(update={
        "version": getattr(data, "version", 1), "programme": data.programme, "region_code": data.region_code,
        "pendamping_id": data.pendamping_id, "registered_on": programme_date(event.time), "welfare": data.welfare,
        "welfare_version": getattr(data, "version", 1),
        "members": tuple(_member(member_id, m, at, at) for member_id, m in members),
    })


def _registry(facts: Facts, event: Event, out: Folded) -> Facts:
    data, at = event.data, event.time
    if isinstance(event, HouseholdUpdated):
        update = {name: getattr(data, name) for name in ("region_code", "welfare", "pendamping_id")
                  if name in data.changed}
        if update.get("welfare") is None:
            update.pop("welfare", None)  # a welfare change always carries the indicators; never unset them
        else:  # a new observation, even of the same values: the run towards mandiri counts it
            update["welfare_version"] = data.version
        return facts.model_copy(update=update)
    if isinstance(event, MemberAdded):
        return _with_member(facts, _member(data.member.member_id, data.member, at, at))
    if isinstance(event, MemberMoved):
        return _with_member(facts, _member(data.member.member_id, data.member, at, at))
    if isinstance(event, MemberUpdated):
        old = next((m for m in facts.members if m.member_id == data.member.member_id), None)
        changed = set(data.changed)
        school_at = at if old is None or "in_school" in changed else old.school_as_of
        pregnant_at = at if old is None or "pregnant" in changed else old.pregnant_as_of
        return _with_member(facts, _member(data.member.member_id, data.member, school_at, pregnant_at))
    if isinstance(event, MemberEnded):
        return _without(facts, {data.member_id})
    if isinstance(event, HouseholdSplit):
        return _without(facts, set(data.member_ids))
    if isinstance(event, HeadChanged):
        relations = {r.member_id: r.relation for r in data.relations}
        relations.setdefault(data.head_member_id, "head")
        return facts.model_copy(update={"members": tuple(
            m.model_copy(update={"relation": relations[m.member_id]}) if m.member_id in relations else m
            for m in facts.members)})
    if isinstance(event, EnrolmentChanged):
        out.steps.append(Step(event.id, data.household_id, data.version, data.programme, data.region_code,
                              data.status, data.previous_status, data.exit_kind, data.effective_date))
        return facts.model_copy(update={"enrolments": {**facts.enrolments, data.programme: data.status}})
    return facts  # e.g. member.flagged: only its version counts here


def _monitoring(facts: Facts, event: VisitRecorded | ComplianceVerified | ComplianceEscalated) -> Facts:
    if isinstance(event, VisitRecorded):
        at, seen = event.data.captured_at, event.data.observations
        school = _observe(facts.school, ((s.member_id, s.enrolled) for s in seen.school), at)
        # an antenatal check, done or missed, is about a pregnant member
        pregnancy = _observe(facts.pregnancy, ((a.member_id, True) for a in seen.antenatal), at)
        return facts.model_copy(update={"school": school, "pregnancy": pregnancy})
    if isinstance(event, ComplianceVerified):
        data = event.data
        verified = dict(facts.verified)
        for m in data.members:
            key, new = f"{m.member_id}:{m.commitment}", Verified(
                member_id=m.member_id, commitment=m.commitment, result=m.result, period_end=data.period_end,
                revision=data.revision, attendance_rate=m.attendance_rate)
            old = verified.get(key)
            if old is None or (new.period_end, new.revision) >= (old.period_end, old.revision):
                verified[key] = new
        return facts.model_copy(update={"verified": verified,
                                        "escalations": escalations.cleared(facts.escalations, verified)})
    opened = escalations.escalate(facts.escalations, event.data)
    return facts.model_copy(update={"escalations": escalations.cleared(opened, facts.verified)})


def _observe(observed: dict[UUID, Observed], values: Iterable[tuple[UUID, bool]], at: datetime
             ) -> dict[UUID, Observed]:
    """The latest observation of each member wins (visits uploaded offline arrive out of order)."""
    result = dict(observed)
    for member_id, value in values:
        old = result.get(member_id)
        if old is None or at > old.at:
            result[member_id] = Observed(value=value, at=at)
    return result


def _member(member_id: UUID, member, school_at: datetime, pregnant_at: datetime) -> RegisteredMember:
    return RegisteredMember(member_id=member_id, sex=member.sex, birth_date=member.birth_date,
                            relation=member.relation, in_school=member.in_school, pregnant=member.pregnant,
                            disability=member.disability, school_as_of=school_at, pregnant_as_of=pregnant_at)


def _with_member(facts: Facts, member: RegisteredMember) -> Facts:
    """The member replaced where they are, or added at the end."""
    members = list(facts.members)
    for i, m in enumerate(members):
        if m.member_id == member.member_id:
            members[i] = member
            break
    else:
        members.append(member)
    return facts.model_copy(update={"members": tuple(members)})


def _without(facts: Facts, member_ids: set[UUID]) -> Facts:
    return facts.model_copy(update={"members": tuple(m for m in facts.members if m.member_id not in member_ids)})


def _depart(facts: Facts, member_id: UUID) -> Facts:
    if member_id in facts.departed:
        return facts
    return facts.model_copy(update={"departed": tuple(sorted({*facts.departed, member_id}, key=str))})


def _effective(member: RegisteredMember, facts: Facts) -> MemberInputs:
    """The member's inputs: the registry's, unless a visit observed a flag since the registry last said it."""
    school, pregnancy = facts.school.get(member.member_id), facts.pregnancy.get(member.member_id)
    return MemberInputs(
        member_id=member.member_id, sex=member.sex, birth_date=member.birth_date, relation=member.relation,
        in_school=school.value if school and school.at > member.school_as_of else member.in_school,
        pregnant=pregnancy.value if pregnancy and pregnancy.at > member.pregnant_as_of else member.pregnant,
        disability=member.disability,
    )


def assessments(before: dict[UUID, Facts], folded: Folded) -> list[list[tuple[UUID, Event, Facts]]]:
    """The assessments a batch calls for, in rounds: round k holds the k-th change of inputs of each
    household, with its event and the facts just after it.

    Every event that changes a household's inputs is assessed on its own inputs, whether it came alone
    or in a batch with others of the same family: how events are batched (live, a replay) changes
    nothing of the decisions, not even a streak counted in assessments.
    """
    rounds: list[list[tuple[UUID, Event, Facts]]] = []
    for household_id in sorted(folded.trail, key=str):
        previous, k = before.get(household_id), 0
        for event, facts in folded.trail[household_id]:
            if inputs_of(facts) is not None and changed_inputs(previous, facts):
                if k == len(rounds):
                    rounds.append([])
                rounds[k].append((household_id, event, facts))
                k += 1
            previous = facts
    return rounds


def changed_inputs(before: Facts | None, after: Facts) -> bool:
    """Whether an assessment of the household may now differ (its inputs or its enrolment changed)."""
    if before is None:
        return inputs_of(after) is not None
    return (inputs_of(before), before.enrolment_status) != (inputs_of(after), after.enrolment_status)


__all__: Sequence[str] = ("Facts", "Folded", "Inputs", "MemberInputs", "Step", "INPUT_EVENTS", "assessments", "changed_inputs",
                          "compliance_of", "fold", "households_of", "inputs_of")
