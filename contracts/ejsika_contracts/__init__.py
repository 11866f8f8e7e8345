"""e-JSiKa contracts: the event envelope, the v1 events and the topic catalogue."""

from .envelope import SPEC_VERSION, Contract, Event
from .events.eligibility import EligibilityAssessed, EligibilityAssessedData, MemberCounts, ScoreContribution
from .events.household import HouseholdRegistered, HouseholdRegisteredData, Member, WelfareIndicators
from .events.monitoring import VisitScheduled, VisitScheduledData
from .topics import ALL_EVENTS, ELIGIBILITY, HOUSEHOLD, TOPICS, VISIT, Topic, topic_named, topic_of

__all__ = [
    "ALL_EVENTS",
    "ELIGIBILITY",
    "HOUSEHOLD",
    "SPEC_VERSION",
    "TOPICS",
    "VISIT",
    "Contract",
    "EligibilityAssessed",
    "EligibilityAssessedData",
    "Event",
    "HouseholdRegistered",
    "HouseholdRegisteredData",
    "Member",
    "MemberCounts",
    "ScoreContribution",
    "Topic",
    "VisitScheduled",
    "VisitScheduledData",
    "WelfareIndicators",
    "topic_named",
    "topic_of",
]
