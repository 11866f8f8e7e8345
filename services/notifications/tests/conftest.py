"""Shared test helpers of notifications: a factory of `eligibility.assessed` events."""

from __future__ import annotations

import uuid

import pytest

from ejsika_contracts import EligibilityAssessed, EligibilityAssessedData, MemberCounts, ScoreContribution


def make_assessed(
    *, region_code: str = "3672011001", eligible: bool = True, programme: str = "jamsosratu", **counts: int
) -> EligibilityAssessed:
    household = uuid.uuid4()
    return EligibilityAssessed(
        source="eligibility",
        subject=str(household),
        correlation_id=uuid.uuid4(),
        data=EligibilityAssessedData(
            household_id=household,
            programme=programme,
            region_code=region_code,
            rule_set="starter-v1",
            score=71.5,
            eligible=eligible,
            components=["school_children", "toddlers"],
            member_counts=MemberCounts(**({"school_children": 2, "toddlers": 1, "pregnant": 1} | counts)),
            explanation=[ScoreContribution(indicator="floor_earth", observed=True, points=12.0)],
        ),
    )


@pytest.fixture
def assessed():
    return make_assessed
