"""Per agency programme, the latest answer decides whether a family benefits; the history keeps every answer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

from ejsika_registry.agency_services import Answer, services

T0 = datetime(2026, 7, 1, 9, tzinfo=timezone.utc)
CHILD = uuid4()


def answer(outcome: str, days: int, agency: str = "dinas-pendidikan", programme: str = "sma_smk_placement",
           member_id=CHILD, reason: str | None = None) -> Answer:
    return Answer(agency, programme, member_id, outcome, reason, uuid4(), T0 + timedelta(days=days))


def test_the_latest_answer_given_decides_whatever_order_they_arrived_in():
    found = services([answer("service_delivered", 30), answer("accepted", 0)])

    [placement] = found
    assert (placement.outcome, placement.benefits, placement.since) == ("service_delivered", True, T0 + timedelta(days=30))
    assert [h.outcome for h in placement.history] == ["accepted", "service_delivered"]


def test_a_declined_programme_is_shown_as_declined_after_those_the_family_benefits_from():
    found = services([
        answer("declined", 5, agency="dinas-kesehatan", programme="antenatal_care", member_id=None,
               reason="moved out of the area"),
        answer("accepted", 1),
        answer("accepted", 3, agency="dinas-kesehatan", programme="toddler_growth", member_id=None),
    ])

    assert [(s.programme, s.benefits) for s in found] == [
        ("toddler_growth", True), ("sma_smk_placement", True), ("antenatal_care", False)]
    assert found[-1].history[0].reason == "moved out of the area"


def test_each_member_of_one_programme_has_its_own_answer():
    other_child = uuid4()
    found = services([answer("accepted", 0), answer("declined", 1, member_id=other_child, reason="no place left")])

    assert {(s.member_id, s.outcome) for s in found} == {(CHILD, "accepted"), (other_child, "declined")}


def test_no_answer_no_programme():
    assert services([]) == []
