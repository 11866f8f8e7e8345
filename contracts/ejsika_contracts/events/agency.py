"""Events emitted by notifications about what the agencies (OPD) answered back."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field, model_validator

from ..envelope import Contract, Event

AGENCY_CODE = r"^[a-z][a-z0-9-]{1,63}$"
AnswerOutcome = Literal["accepted", "service_delivered", "declined"]


class AgencyAnsweredData(Contract):
    """An agency's answer to one notification about a family: the family is taken into one of the agency's
    programmes (accepted), has had the service (service_delivered: placed at an SMA/SMK, the check-up
    happened), or was declined, with a reason. Ids and codes only: the agency's own pseudonyms stay in
    notifications."""

    household_id: UUID
    notification_id: UUID = Field(description="The notification answered, as the agency received it.")
    agency: str = Field(pattern=AGENCY_CODE, description="The agency's code, e.g. dinas-pendidikan.")
    programme: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,63}$",
                           description="The agency's programme, e.g. sma_smk_placement.")
    outcome: AnswerOutcome
    reason: str | None = Field(default=None, max_length=500, description="Why; required when declined.")
    member_id: UUID | None = Field(default=None, description="The member the answer is about, when one is.")
    answered_at: datetime

    @model_validator(mode="after")
    def _declined_has_reason(self) -> AgencyAnsweredData:
        if self.outcome == "declined" and not self.reason:
            raise ValueError("a declined answer gives its reason")
        return self


class AgencyAnswered(Event):
    event_type: ClassVar[str] = "agency.answered"
    version: ClassVar[int] = 1
    type: Literal["agency.answered"] = "agency.answered"
    dataversion: Literal[1] = 1
    data: AgencyAnsweredData
