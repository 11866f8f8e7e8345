"""Events emitted by eligibility: each assessment carries its explanation and rule version."""

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from ..envelope import Contract, Event
from ..values import ProgrammeCode, VillageCode


class ScoreContribution(Contract):
    indicator: str
    observed: bool | float | int | None
    points: float = Field(description="Points this indicator added to the deprivation score.")


class MemberCounts(Contract):
    """Counts by benefit component: what agencies may know without any personal data."""

    pregnant: int = Field(default=0, ge=0)
    toddlers: int = Field(default=0, ge=0)
    school_children: int = Field(default=0, ge=0)
    children_entering_sma: int = Field(default=0, ge=0)
    elderly: int = Field(default=0, ge=0)
    disabled: int = Field(default=0, ge=0)


class EligibilityAssessedData(Contract):
    household_id: UUID
    programme: ProgrammeCode
    region_code: VillageCode
    rule_set: str = Field(description="Id and version of the rule set, e.g. starter-v1.")
    score: float = Field(ge=0, le=100, description="Deprivation score: higher is poorer.")
    eligible: bool
    components: list[str] = Field(description="Benefit components the family qualifies for.")
    member_counts: MemberCounts
    explanation: list[ScoreContribution]


class EligibilityAssessed(Event):
    event_type: ClassVar[str] = "eligibility.assessed"
    version: ClassVar[int] = 1
    type: Literal["eligibility.assessed"] = "eligibility.assessed"
    dataversion: Literal[1] = 1
    data: EligibilityAssessedData
