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


AssessmentStatus = Literal["eligible", "not_eligible", "insufficient_data"]
GraduationKind = Literal["mandiri", "alamiah"]


class Benefit(Contract):
    component: str
    member_id: UUID | None = Field(description="The registry's member id; none for members registered without one.")
    amount: int = Field(ge=0, description="Rupiah a year.")


class ProposedExit(Contract):
    kind: Literal["paksa", "mandiri", "alamiah"]
    reason: str = Field(max_length=500)


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
    # Optional since rule sets became data (issue 9): older assessments lack them.
    rule_version: int | None = Field(default=None, ge=1, description="Version of the programme's rule set.")
    status: AssessmentStatus | None = Field(
        default=None, description="eligible, not_eligible, or insufficient_data (too few indicators observed).")
    desil: int | None = Field(default=None, ge=1, le=10, description="1 (poorest) to 10; none without enough data.")
    missing: list[str] | None = Field(default=None, description="Indicators not observed (they earned no points).")
    benefits: list[Benefit] | None = Field(
        default=None, description="Each component earned, by member (an id, never a name), within the family's maximum.")
    yearly_amount: int | None = Field(default=None, ge=0, description="Rupiah a year: the sum of the benefits.")
    fingerprint: str | None = Field(
        default=None, description="sha256 of the inputs and rule set the decision was made from.")
    graduation: GraduationKind | None = Field(
        default=None, description="Graduation candidate: mandiri (prosperous long enough) or alamiah (no component).")
    proposed_exit: ProposedExit | None = Field(
        default=None, description="An exit for an operator to confirm in the registry, with its reason.")


class EligibilityAssessed(Event):
    event_type: ClassVar[str] = "eligibility.assessed"
    version: ClassVar[int] = 1
    type: Literal["eligibility.assessed"] = "eligibility.assessed"
    dataversion: Literal[1] = 1
    data: EligibilityAssessedData


class FunderShare(Contract):
    """What one funding source pays of a family's yearly amount (sharing anggaran)."""

    funder: str = Field(pattern=r"^[a-z][a-z0-9-]{1,63}$", description="Funding source, e.g. apbd-provinsi-banten.")
    share: float = Field(gt=0, le=1, description="Its share of the quota's budget; the shares add up to 1.")
    amount: int = Field(ge=0, description="Rupiah a year it pays for this family.")


class QuotaAdmittedData(Contract):
    household_id: UUID
    programme: ProgrammeCode
    year: int = Field(ge=2000, le=2100, description="The programme year of the quota.")
    region: str = Field(pattern=r"^\d{4}$", description="The kabupaten/kota of the quota (Kemendagri PP.KK).")
    rank: int = Field(ge=1, description="The family's place in line when it was admitted (1: the first).")
    score: float = Field(ge=0, le=100, description="Deprivation score it was ranked by.")
    desil: int | None = Field(default=None, ge=1, le=10)
    rule_set: str = Field(description="The rule set of the decision it was ranked by, e.g. jamsosratu.v1.")
    yearly_amount: int = Field(ge=0, description="Rupiah a year, the sum of its benefit components.")
    funders: list[FunderShare] = Field(min_length=1, description="Who pays the yearly amount, in Rupiah.")


class QuotaAdmitted(Event):
    """An eligible candidate falls inside its region's quota: the registry makes it active."""

    event_type: ClassVar[str] = "quota.admitted"
    version: ClassVar[int] = 1
    type: Literal["quota.admitted"] = "quota.admitted"
    dataversion: Literal[1] = 1
    data: QuotaAdmittedData
