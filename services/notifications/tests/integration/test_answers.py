"""Agencies answer their notifications, on the real PostgreSQL: each answer is kept, becomes one
`agency.answered` in the outbox and a line of the record of processing; a retry with its client id
changes nothing, another answer with it is a conflict; another agency's notification does not exist
for an agency; a refusal gives its reason; the agency's figures count it all.

The routes run as the service mounts them, behind a local identity provider whose tokens carry the
agency claim as the realm's agency clients do.
"""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import httpx
import pytest
from prometheus_client import generate_latest

from ejsika_contracts import AGENCY
from ejsika_notifications import answers_api, figures_api, pseudonyms
from ejsika_notifications.demo import MIGRATIONS
from ejsika_notifications.domain.agencies import EDUCATION, HEALTH
from ejsika_notifications.metrics import AnswerMetrics
from ejsika_runtime import scopes
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity, promtool

pytestmark = pytest.mark.infra


class World:
    def __init__(self, service: Service, idp: LocalIdentity, metrics: AnswerMetrics) -> None:
        self.service, self.idp, self.metrics = service, idp, metrics
        self.app = service.app()

    @property
    def pool(self):
        return self.service.pool

    def client(self, role: str, **claims) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://notifications",
                                 headers=self.idp.headers(role, **claims))

    def agency(self, code: str = EDUCATION.code) -> httpx.AsyncClient:
        return self.client("agency", agency=code, sub=f"service-account-{code}")

    async def notify(self, agency: str, programme: str = "jscm") -> tuple[UUID, UUID, UUID]:
        """A notification queued for `agency` about a new household: (notification, household, event)."""
        household, event = uuid4(), uuid4()
        async with self.pool.acquire() as conn:
            subscription = await conn.fetchval(
                "INSERT INTO subscriptions (agency, event_type, url, secret_encrypted)"
                " VALUES ($1, 'compliance.escalated', 'https://opd.example/hooks', '\\x00') RETURNING id", agency)
            notification = await conn.fetchval(
                "INSERT INTO deliveries (subscription_id, event_id, payload, household_id)"
                " VALUES ($1, $2, '{}', $3) RETURNING id", subscription, event, household)
            await scopes.remember(conn, [scopes.HouseholdScope(household, programme, "3672011001", None)])
        return notification, household, event

    async def events(self) -> list[dict]:
        rows = await self.pool.fetch("SELECT topic, key, value FROM outbox ORDER BY id")
        assert {r["topic"] for r in rows} <= {AGENCY.name}
        return [{"key": bytes(r["key"]).decode(), **json.loads(bytes(r["value"]))} for r in rows]


@pytest.fixture
async def world(migrated_schema) -> World:
    schema, pool = await migrated_schema("notifications", MIGRATIONS)
    service = Service(schema, Settings(auth_issuer=ISSUER), MIGRATIONS)
    idp = LocalIdentity()
    idp.install(service.access)
    service._pool = pool  # the routes run on the test's schema; the service itself is never started
    metrics = AnswerMetrics(service.registry)
    service.router.include_router(answers_api.routes(service, metrics))
    service.router.include_router(figures_api.routes(service))
    async with pool.acquire() as conn:
        for agency in (EDUCATION, HEALTH):
            await conn.execute("INSERT INTO agencies (code, name, profile) VALUES ($1, $2, $3)",
                               agency.code, agency.name, sorted(agency.profile))
    return World(service, idp, metrics)


def accepted(**changes) -> dict:
    return {"client_id": str(uuid4()), "programme": "sma_smk_placement", "outcome": "accepted", **changes}


async def test_an_answer_becomes_an_agency_answered_event_about_the_household(world):
    notification, household, notified = await world.notify(EDUCATION.code)
    correlation = uuid4()
    async with world.agency() as education:
        answer = await education.post(f"/notifications/{notification}/answers", json=accepted(),
                                      headers={"X-Correlation-Id": str(correlation)})

    assert answer.status_code == 201, answer.text
    assert answer.json()["outcome"] == "accepted" and answer.json()["notification_id"] == str(notification)
    assert str(household) not in answer.text  # the agency knows the family by its own reference only
    [event] = await world.events()
    assert event["key"] == event["subject"] == str(household)
    assert (event["type"], event["source"], event["causation_id"], event["correlation_id"]) == (
        "agency.answered", "notifications", str(notified), str(correlation))
    data = event["data"]
    assert (data["household_id"], data["notification_id"], data["agency"], data["programme"], data["outcome"]) == (
        str(household), str(notification), EDUCATION.code, "sma_smk_placement", "accepted")
    AGENCY.parse(json.dumps(event).encode())  # a valid event of the topic, as the registry reads it
    record = await world.pool.fetchrow("SELECT subject, role, action, fields, channel FROM processing_records"
                                       " WHERE household_id = $1", household)
    assert (record["subject"], record["role"], record["action"]) == (
        f"service-account-{EDUCATION.code}", "agency", "write")
    assert "agency_answers.outcome" in record["fields"]
    assert record["channel"] == "POST /notifications/{notification_id}/answers"


async def test_a_retry_with_its_client_id_answers_the_same_and_another_answer_with_it_conflicts(world):
    notification, _, _ = await world.notify(EDUCATION.code)
    body = accepted()
    async with world.agency() as education:
        first = await education.post(f"/notifications/{notification}/answers", json=body)
        again = await education.post(f"/notifications/{notification}/answers", json=body)
        other = await education.post(f"/notifications/{notification}/answers",
                                     json={**body, "outcome": "declined", "reason": "no place left"})

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    assert other.headers["content-type"] == "application/problem+json"
    assert len(await world.events()) == 1
    assert await world.pool.fetchval("SELECT count(*) FROM agency_answers") == 1
    assert world.service.registry.get_sample_value("ejsika_agency_answers_total", {"agency": EDUCATION.code}) == 1


async def test_another_agencys_notification_is_not_found_and_nothing_is_written(world):
    theirs, _, _ = await world.notify(EDUCATION.code)
    async with world.agency(HEALTH.code) as health, world.client("agency") as without_claim:
        answers = [await health.post(f"/notifications/{theirs}/answers", json=accepted()),
                   await health.post(f"/notifications/{uuid4()}/answers", json=accepted()),
                   await without_claim.post(f"/notifications/{theirs}/answers", json=accepted())]
        read = await health.get(f"/notifications/{theirs}/answers")

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert read.status_code == 404
    assert await world.events() == []
    assert await world.pool.fetchval("SELECT count(*) FROM processing_records") == 0


async def test_a_declined_answer_needs_its_reason(world):
    notification, _, _ = await world.notify(EDUCATION.code)
    async with world.agency() as education:
        bare = await education.post(f"/notifications/{notification}/answers",
                                    json=accepted(outcome="declined"))
        blank = await education.post(f"/notifications/{notification}/answers",
                                     json=accepted(outcome="declined", reason=""))
        given = await education.post(f"/notifications/{notification}/answers",
                                     json=accepted(outcome="declined", reason="the child chose a pesantren"))

    assert bare.status_code == 422 and bare.json()["errors"] == [{"field": "reason", "rule": "reason_required"}]
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "reason"
    assert given.status_code == 201
    [event] = await world.events()
    assert (event["data"]["outcome"], event["data"]["reason"]) == ("declined", "the child chose a pesantren")


async def test_a_member_is_named_by_the_agencys_own_reference(world):
    notification, household, _ = await world.notify(EDUCATION.code)
    _, other_household, _ = await world.notify(EDUCATION.code)
    child, strangers_child = uuid4(), uuid4()
    keys = pseudonyms.Pseudonyms(b"p" * 32)
    mine, theirs = keys.member_reference_of(EDUCATION.code, child), keys.member_reference_of(HEALTH.code, child)
    stranger = keys.member_reference_of(EDUCATION.code, strangers_child)
    async with world.pool.acquire() as conn:
        for family, member in ((household, child), (other_household, strangers_child)):
            await conn.execute("INSERT INTO families (household_id, version, programme, region_code)"
                               " VALUES ($1, 1, 'jscm', '3672011001')", family)
            await conn.execute("INSERT INTO family_members (household_id, member_id, name, birth_date, sex, relation,"
                               " in_school) VALUES ($1, $2, 'ANAK', '2010-05-01', 'F', 'child', true)", family, member)
        await pseudonyms.remember(conn, [pseudonyms.Handed(EDUCATION.code, mine, "member", child),
                                         pseudonyms.Handed(HEALTH.code, theirs, "member", child),
                                         pseudonyms.Handed(EDUCATION.code, stranger, "member", strangers_child)])
    async with world.agency() as education:
        named = await education.post(f"/notifications/{notification}/answers", json=accepted(member_reference=mine))
        foreign = await education.post(f"/notifications/{notification}/answers",
                                       json=accepted(member_reference=theirs))
        elsewhere = await education.post(f"/notifications/{notification}/answers",
                                         json=accepted(member_reference=stranger))

    assert named.status_code == 201 and named.json()["member_reference"] == mine
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "member_reference"
    # a member the agency knows, but of another family than the one it was notified of
    assert elsewhere.status_code == 422 and elsewhere.json()["errors"][0]["rule"] == "member_of_family"
    [event] = await world.events()
    assert event["data"]["member_id"] == str(child) and mine not in json.dumps(event)


async def test_only_an_agency_answers(world):
    notification, _, _ = await world.notify(EDUCATION.code)
    for role, claims in (("operator", {"programme": "jscm"}), ("auditor", {}), ("admin", {})):
        async with world.client(role, **claims) as someone:
            answer = await someone.post(f"/notifications/{notification}/answers", json=accepted())
        assert answer.status_code == 403, role
    assert await world.events() == []


async def test_the_answers_are_read_by_their_agency_the_programmes_operator_and_auditors(world):
    notification, household, _ = await world.notify(EDUCATION.code, programme="jscm")
    async with world.agency() as education:
        first = await education.post(f"/notifications/{notification}/answers", json=accepted())
        later = await education.post(f"/notifications/{notification}/answers",
                                     json=accepted(outcome="service_delivered"))
        own = await education.get(f"/notifications/{notification}/answers", params={"limit": 1})
        rest = await education.get(f"/notifications/{notification}/answers",
                                   params={"limit": 1, "cursor": own.json()["next_cursor"]})
    async with world.client("operator", programme="jscm") as operator, \
            world.client("operator", programme="jamsosratu") as elsewhere, \
            world.client("auditor") as auditor, world.client("pendamping") as pendamping:
        theirs = await operator.get(f"/notifications/{notification}/answers")
        not_theirs = await elsewhere.get(f"/notifications/{notification}/answers")
        audited = await auditor.get(f"/notifications/{notification}/answers")
        refused = await pendamping.get(f"/notifications/{notification}/answers")

    assert (first.status_code, later.status_code) == (201, 201)
    assert [a["outcome"] for a in own.json()["items"] + rest.json()["items"]] == ["accepted", "service_delivered"]
    assert rest.json()["next_cursor"] is None
    assert [a["id"] for a in theirs.json()["items"]] == [first.json()["id"], later.json()["id"]]
    assert audited.json() == theirs.json()
    assert (not_theirs.status_code, refused.status_code) == (404, 403)
    reads = await world.pool.fetchval("SELECT count(*) FROM processing_records WHERE household_id = $1"
                                      " AND action = 'read'", household)
    assert reads == 4  # two pages for the agency, the operator, the auditor


async def test_a_notification_pruned_after_its_retention_is_still_answered(world):
    notification, household, _ = await world.notify(EDUCATION.code)
    async with world.agency() as education:
        assert (await education.post(f"/notifications/{notification}/answers", json=accepted())).status_code == 201
        await world.pool.execute("DELETE FROM deliveries WHERE id = $1", notification)
        placed = await education.post(f"/notifications/{notification}/answers",
                                      json=accepted(outcome="service_delivered"))

    assert placed.status_code == 201, placed.text
    assert [(e["subject"], e["data"]["outcome"]) for e in await world.events()] == [
        (str(household), "accepted"), (str(household), "service_delivered")]


async def test_an_agencys_figures_count_its_notifications_answers_and_time_to_answer(world):
    answered, _, _ = await world.notify(EDUCATION.code)
    await world.notify(EDUCATION.code)
    await world.notify(HEALTH.code)
    await world.pool.execute("UPDATE deliveries SET status = 'failed' WHERE id <> $1 AND subscription_id IN"
                             " (SELECT id FROM subscriptions WHERE agency = $2)", answered, EDUCATION.code)
    await world.pool.execute("UPDATE deliveries SET status = 'delivered' WHERE id = $1", answered)
    async with world.agency() as education:
        await education.post(f"/notifications/{answered}/answers", json=accepted())
        await education.post(f"/notifications/{answered}/answers", json=accepted(outcome="service_delivered"))
        own = await education.get(f"/agencies/{EDUCATION.code}/figures")
        other = await education.get(f"/agencies/{HEALTH.code}/figures")
    async with world.client("operator", programme="jscm") as operator, world.client("pendamping") as pendamping:
        seen = await operator.get(f"/agencies/{HEALTH.code}/figures")
        unknown = await operator.get("/agencies/dinas-sosial/figures")
        refused = await pendamping.get(f"/agencies/{EDUCATION.code}/figures")

    assert own.status_code == 200, own.text
    figures = own.json()
    assert figures["notifications"] == {"notified": 2, "pending": 0, "delivered": 1, "failed": 1}
    answers = figures["answers"]
    assert (answers["answered"], answers["answers"], answers["accepted"], answers["service_delivered"],
            answers["declined"]) == (1, 2, 1, 1, 0)
    assert answers["time_to_answer"]["count"] == 1 and answers["time_to_answer"]["median_s"] >= 0
    assert seen.status_code == 200 and seen.json()["notifications"]["pending"] == 1
    assert seen.json()["answers"]["answered"] == 0 and seen.json()["answers"]["time_to_answer"]["median_s"] is None
    assert (other.status_code, unknown.status_code, refused.status_code) == (404, 404, 403)
    registry = world.service.registry
    assert registry.get_sample_value("ejsika_agency_answers_total", {"agency": EDUCATION.code}) == 2
    assert registry.get_sample_value("ejsika_agency_time_to_answer_seconds_count", {"agency": EDUCATION.code}) == 1


def test_the_answer_metrics_pass_promtool():
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    metrics = AnswerMetrics(registry)
    metrics.answers.labels(EDUCATION.code).inc()
    metrics.time_to_answer.labels(EDUCATION.code).observe(3600)
    checked = promtool("check", "metrics", input=generate_latest(registry))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == b"" and checked.stderr.strip() == b""
