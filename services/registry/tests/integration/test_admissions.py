"""quota.admitted on the real PostgreSQL: an admitted candidate becomes active with its history (old and new) and
its enrolment.changed at the household's next version, through the registry's consumer of the eligibility topic;
a family that is not a candidate any more is skipped and nothing changes."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from ejsika_contracts import ELIGIBILITY, FunderShare, QuotaAdmitted, QuotaAdmittedData
from ejsika_registry import admissions, households
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra


def admitted(household: dict, rank: int = 1) -> QuotaAdmitted:
    return QuotaAdmitted(source="eligibility", subject=str(household["id"]), correlation_id=uuid4(),
                         data=QuotaAdmittedData(
                             household_id=household["id"], programme=household["programme"],
                             year=programme_today().year, region="3672", rank=rank, score=72.0, desil=2,
                             rule_set="jscm.v1", yearly_amount=3_000_000,
                             funders=[FunderShare(funder="apbd-kota-cilegon", share=1.0, amount=3_000_000)]))


async def consume(registry, events) -> None:
    """A batch of the eligibility topic, as the registry's composition root hands it on."""
    from ejsika_registry.app import service  # reads the settings of the environment conftest sets

    consumer = next(c for c in service.consumers if c.topic is ELIGIBILITY)
    async with unit_of_work(registry.pool, registry.service.outbox) as uow:
        await consumer.handler(uow, events)


async def test_an_admitted_candidate_becomes_active_with_its_history_and_event(registry):
    first, second = await registry.register(2)
    events = [admitted(first), admitted(second, 2), admitted(first)]  # the third is a redelivered admission
    await consume(registry, events)
    for household in (first, second):
        state = await households.current_state(registry.pool, household["id"])
        assert state["version"] == 2
        assert state["enrolments"]["jscm"]["status"] == "active"
        assert "rank" in state["enrolments"]["jscm"]["reason"]
    rows = await registry.pool.fetch(
        "SELECT version, changes::text AS changes, source, cause_id FROM household_history"
        " WHERE household_id = $1 AND change = 'enrolment_changed'", first["id"])
    assert [(r["version"], r["source"], r["cause_id"]) for r in rows] == [(2, "eligibility", events[0].id)]
    change = json.loads(rows[0]["changes"])["enrolments/jscm"]
    assert (change["old"]["status"], change["new"]["status"]) == ("candidate", "active")
    announced = [e for e in await registry.outbox() if e["type"] == "enrolment.changed"]
    assert [(e["data"]["household_id"], e["data"]["version"], e["data"]["previous_status"], e["data"]["status"],
             e["causation_id"]) for e in announced] == [
        (str(first["id"]), 2, "candidate", "active", str(events[0].id)),
        (str(second["id"]), 2, "candidate", "active", str(events[1].id))]
    written = await registry.pool.fetchval(
        "SELECT count(*) FROM processing_records WHERE household_id = $1 AND channel = 'event quota.admitted'",
        first["id"])
    assert written == 1


async def test_a_family_that_is_not_a_candidate_any_more_is_skipped(registry):
    (household,) = await registry.register(1)
    await registry.pool.execute("UPDATE enrolments SET status = 'exited', exit_kind = 'mandiri', reason = 'able'"
                                " WHERE household_id = $1", household["id"])
    async with unit_of_work(registry.pool, registry.service.outbox) as uow:
        assert await admissions.admit(uow, [admitted(household)]) == 0
    state = await households.current_state(registry.pool, household["id"])
    assert state["version"] == 1 and state["enrolments"]["jscm"]["status"] == "exited"
    assert [e for e in await registry.outbox() if e["type"] == "enrolment.changed"] == []

