"""The registry shows per KPM the agency programmes it benefits from, from `agency.answered`, on the real
PostgreSQL: the consumer keeps each answer once however often it is delivered, records the processing,
and the household's route shows them to the staff who may read the household, never to an agency.

The handler is called as the consumer calls it, with events read back from their bytes.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from ejsika_contracts import AGENCY, AgencyAnswered, AgencyAnsweredData
from ejsika_registry import agency_services
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

T0 = datetime(2026, 7, 1, 9, tzinfo=timezone.utc)


@pytest.fixture
async def registry(registry):
    registry.service.router.include_router(agency_services.routes(registry.service))
    return registry


def answered(household_id: UUID, outcome: str, days: int, *, agency: str = "dinas-pendidikan",
             programme: str = "sma_smk_placement", reason: str | None = None,
             member_id: UUID | None = None) -> AgencyAnswered:
    event = AgencyAnswered(source="notifications", subject=str(household_id), correlation_id=uuid4(),
                           data=AgencyAnsweredData(household_id=household_id, notification_id=uuid4(), agency=agency,
                                                   programme=programme, outcome=outcome, reason=reason,
                                                   member_id=member_id, answered_at=T0 + timedelta(days=days)))
    return AGENCY.parse(event.to_bytes())  # as the broker hands it over


async def consume(registry, events) -> None:
    async with unit_of_work(registry.pool, registry.service.outbox) as uow:
        await agency_services.record_answers(uow, list(events))


async def test_a_kpm_shows_the_agency_programmes_it_benefits_from_with_their_history(registry):
    [household] = await registry.register()
    hid = household["id"]
    child = UUID(list(household["members"])[-1])
    placed = answered(hid, "service_delivered", 40, member_id=child)
    await consume(registry, [answered(hid, "accepted", 0, member_id=child),
                             answered(hid, "declined", 2, agency="dinas-kesehatan", programme="antenatal_care",
                                      reason="no pregnancy found at the check")])
    await consume(registry, [placed, placed])  # delivered twice in one batch,
    await consume(registry, [placed])  # and again later

    async with registry.client("operator") as operator:
        answer = await operator.get(f"/households/{hid}/agency-services")

    assert answer.status_code == 200, answer.text
    services = answer.json()["services"]
    assert [(s["agency"], s["programme"], s["benefits"], s["outcome"]) for s in services] == [
        ("dinas-pendidikan", "sma_smk_placement", True, "service_delivered"),
        ("dinas-kesehatan", "antenatal_care", False, "declined")]
    assert services[0]["member_id"] == str(child)
    assert [h["outcome"] for h in services[0]["history"]] == ["accepted", "service_delivered"]
    assert services[1]["history"][0]["reason"] == "no pregnancy found at the check"
    assert await registry.pool.fetchval("SELECT count(*) FROM agency_services") == 3
    writes = await registry.pool.fetch("SELECT channel, fields FROM processing_records WHERE household_id = $1"
                                       " AND action = 'write' AND channel = 'event agency.answered'", hid)
    assert writes and "agency_services.outcome" in writes[0]["fields"]
    reads = await registry.pool.fetchval("SELECT count(*) FROM processing_records WHERE household_id = $1"
                                         " AND action = 'read' AND channel LIKE '%agency-services'", hid)
    assert reads == 1


async def test_a_family_no_agency_answered_about_has_none(registry):
    [household] = await registry.register()
    async with registry.client("auditor") as auditor:
        answer = await auditor.get(f"/households/{household['id']}/agency-services")
    assert answer.status_code == 200 and answer.json() == {"household_id": str(household["id"]), "services": []}


async def test_only_staff_who_may_read_the_household_see_its_agency_programmes(registry):
    [household] = await registry.register()
    hid = household["id"]
    await consume(registry, [answered(hid, "accepted", 0)])

    async with registry.client("operator", programme="jamsosratu") as elsewhere, \
            registry.client("supervisor", area="3602") as other_area, \
            registry.client("pendamping", sub="pendamping-other") as not_caseload, \
            registry.client("agency", agency="dinas-pendidikan") as agency, \
            registry.client("admin") as admin, registry.client("supervisor") as supervisor:
        refused = {name: (await client.get(f"/households/{hid}/agency-services")).status_code
                   for name, client in (("operator elsewhere", elsewhere), ("other area", other_area),
                                        ("not the caseload", not_caseload), ("agency", agency), ("admin", admin))}
        allowed = await supervisor.get(f"/households/{hid}/agency-services")

    assert refused == {"operator elsewhere": 404, "other area": 404, "not the caseload": 404, "agency": 404,
                       "admin": 403}
    assert allowed.status_code == 200 and allowed.json()["services"][0]["benefits"] is True


async def test_an_answer_about_a_household_not_registered_here_is_kept_and_shown_to_nobody(registry):
    stranger = uuid4()
    await consume(registry, [answered(stranger, "accepted", 0)])

    async with registry.client("auditor") as auditor:
        answer = await auditor.get(f"/households/{stranger}/agency-services")
    assert answer.status_code == 404
    assert await registry.pool.fetchval("SELECT count(*) FROM agency_services WHERE household_id = $1", stranger) == 1
