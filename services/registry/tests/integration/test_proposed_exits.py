"""An exit proposed by eligibility (paksa after an escalated non-compliance) becomes the family's recommended
exit, with the decision's reason, for an operator to confirm; a later decision proposing none withdraws it."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ejsika_contracts import EligibilityAssessed, EligibilityAssessedData, MemberCounts
from ejsika_registry import enrolment_api, enrolments
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

WHY = "school_dropout_risk: the school commitment unmet in 3 consecutive periods up to 2026-03-31"


@pytest.fixture
async def registry(registry):
    registry.service.router.include_router(enrolment_api.routes(registry.service))
    return registry


def assessed(household: dict, proposed: dict | None) -> EligibilityAssessed:
    data = EligibilityAssessedData(
        household_id=household["id"], programme=household["programme"], region_code=household["region_code"],
        rule_set="jscm.v1", score=70.0, eligible=True, components=["school_sd"], member_counts=MemberCounts(),
        explanation=[], rule_version=1, status="eligible", desil=2, proposed_exit=proposed)
    return EligibilityAssessed(source="eligibility", subject=str(household["id"]), correlation_id=uuid4(), data=data)


async def consume(registry, events: list[EligibilityAssessed]) -> None:
    from ejsika_registry.app import record_status  # the composition root reads the service's settings

    async with unit_of_work(registry.pool, registry.service.outbox) as uow:
        await record_status(uow, events)


async def test_a_proposed_paksa_exit_is_recommended_with_its_reason_and_withdrawn_by_a_decision_without_one(registry):
    active, candidate = await registry.register(2)
    async with registry.client("operator") as operator:
        admitted = await operator.post(f"/households/{active['id']}/enrolments/jscm", json={"status": "active"},
                                       headers={"If-Match": '"1"'})
        assert admitted.status_code == 200, admitted.text

    proposal = {"kind": "paksa", "reason": WHY}
    await consume(registry, [assessed(active, proposal), assessed(candidate, proposal)])
    (found,) = await enrolments.of_household(registry.pool, active["id"])
    assert found["status"] == "active"  # recommended, never exited by an event
    assert (found["recommended_exit"]["exit_kind"], found["recommended_exit"]["reason"]) == ("paksa", WHY)
    (waiting,) = await enrolments.of_household(registry.pool, candidate["id"])
    assert waiting["recommended_exit"] is None  # a candidate holds no place to leave

    async with registry.client("operator") as operator:
        listed = (await operator.get("/enrolments/recommended-exits")).json()["items"]
    assert [(i["household_id"], i["recommended_exit"]["exit_kind"]) for i in listed] == [(str(active["id"]), "paksa")]

    await consume(registry, [assessed(active, None)])  # the family complied again: no proposal any more
    (found,) = await enrolments.of_household(registry.pool, active["id"])
    assert found["recommended_exit"] is None
