"""Escalated non-compliance as grounds for a forced exit (paksa), and when those grounds lapse.

Monitoring escalates a member's commitment unmet for several consecutive periods
(`compliance.escalated`); the escalation goes into the household's inputs, where the assessment
turns it into a proposed paksa exit that an operator confirms or not in the registry. It lapses
when the same member's commitment is verified compliant for a later period: the family recovered,
so a proposal made on it is withdrawn by the next decision. Only codes, dates and counts go into
the reason, never a name or a NIK.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ejsika_contracts.events.monitoring import Commitment, ComplianceEscalatedData, EscalationKind

if TYPE_CHECKING:
    from .domain.inputs import Verified


class Escalation(BaseModel):
    """The grounds of a proposed paksa exit, as they travel in the inputs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EscalationKind
    period: date = Field(description="The last period of the run of non-compliance.")
    reason: str
    member_id: UUID
    commitment: Commitment


def reason(data: ComplianceEscalatedData) -> str:
    return (f"{data.kind}: the {data.commitment} commitment unmet in {data.consecutive_periods} consecutive"
            f" periods up to {data.period_end.isoformat()}")


def escalate(open_: Mapping[str, Escalation], data: ComplianceEscalatedData) -> dict[str, Escalation]:
    """The open escalations with this one: per member and commitment, the one of the latest period."""
    key = f"{data.member_id}:{data.commitment}"
    old = open_.get(key)
    if old is not None and old.period >= data.period_end:
        return dict(open_)
    return {**open_, key: Escalation(kind=data.kind, period=data.period_end, reason=reason(data),
                                     member_id=data.member_id, commitment=data.commitment)}


def cleared(open_: Mapping[str, Escalation], verified: Mapping[str, Verified]) -> dict[str, Escalation]:
    """The escalations still open: those without a compliant verification of a later period."""
    return {key: e for key, e in open_.items()
            if not ((v := verified.get(key)) is not None and v.result == "compliant" and v.period_end > e.period)}


def current(open_: Mapping[str, Escalation]) -> Escalation | None:
    """The escalation the inputs carry: the latest (ties broken by kind and member, so replays agree)."""
    if not open_:
        return None
    return max(open_.values(), key=lambda e: (e.period, e.kind, str(e.member_id), e.commitment))
