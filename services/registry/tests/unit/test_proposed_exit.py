"""The exit an eligibility decision recommends: the one it proposes, or, for older decisions, the old reading."""

from uuid import uuid4

from ejsika_contracts import EligibilityAssessedData, MemberCounts
from ejsika_registry.domain.enrolment import proposed_exit


def decision(**fields) -> EligibilityAssessedData:
    return EligibilityAssessedData.model_validate({
        "household_id": uuid4(), "programme": "jamsosratu", "region_code": "3672011001", "rule_set": "jamsosratu.v1",
        "score": 30.0, "eligible": False, "components": ["school_sd"], "member_counts": MemberCounts(),
        "explanation": [], **fields})


def test_a_proposed_exit_is_recommended_with_its_kind_and_reason():
    why = "school_dropout_risk: the school commitment unmet in 3 consecutive periods up to 2026-03-31"
    kind, reason = proposed_exit(decision(rule_version=1, status="eligible", eligible=True,
                                          proposed_exit={"kind": "paksa", "reason": why}))
    assert (kind, reason) == ("paksa", why)
    kind, _ = proposed_exit(decision(rule_version=1, status="not_eligible", graduation="mandiri",
                                     proposed_exit={"kind": "mandiri", "reason": "desil 8 in 3 assessments"}))
    assert kind == "mandiri"


def test_a_decision_of_the_rule_sets_as_data_without_a_proposal_recommends_no_exit():
    """Not eligible to enter is not certified able to leave: only a proposal says so."""
    assert proposed_exit(decision(rule_version=1, status="not_eligible", desil=5)) == (None, None)


def test_an_older_decision_without_the_field_is_read_as_before():
    kind, reason = proposed_exit(decision())
    assert kind == "paksa" and "jamsosratu.v1" in reason
    assert proposed_exit(decision(components=[]))[0] == "alamiah"
    assert proposed_exit(decision(eligible=True)) == (None, None)
