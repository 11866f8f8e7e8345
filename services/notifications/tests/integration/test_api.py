"""The HTTP API on a real PostgreSQL, as the admin (a real Keycloak token).

What agencies, the auditor and others may do: test_agency_isolation.py.
"""

from __future__ import annotations

import pytest

from ejsika_notifications import demo
from ejsika_notifications.demo import ensure_demo_subscription
from ejsika_notifications.domain.subscriptions import new_secret

pytestmark = pytest.mark.infra

EDUCATION = {"code": "dinas-pendidikan", "name": "Dinas Pendidikan",
             "profile": ["region_code", "eligible", "member_counts.children_entering_sma"]}


@pytest.fixture
def client(api_client):
    return api_client()  # the admin client's token


async def test_an_agency_subscribes_and_its_secret_is_shown_once(client):
    assert (await client.post("/agencies", json=EDUCATION)).status_code == 201
    again = await client.post("/agencies", json=EDUCATION)
    assert again.status_code == 409 and again.json()["detail"] == "agency dinas-pendidikan exists"
    assert again.headers["content-type"] == "application/problem+json"
    assert (await client.get("/agencies")).json() == [
        {"code": "dinas-pendidikan", "name": "Dinas Pendidikan", "profile": sorted(EDUCATION["profile"])}]

    created = await client.post("/subscriptions", json={
        "agency": "dinas-pendidikan", "event_type": "eligibility.assessed",
        "filter": {"region_prefix": "3672", "eligible_only": True}, "url": "https://opd.example/hooks"})
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["secret"].startswith("whsec_")
    assert subscription["filter"] == {"region_prefix": "3672", "eligible_only": True, "programmes": [],
                                      "enrolment_statuses": [], "school_levels": [], "escalation_kinds": []}

    listed = (await client.get("/subscriptions", params={"agency": "dinas-pendidikan"})).json()
    assert [s["id"] for s in listed] == [subscription["id"]]
    assert "secret" not in listed[0] and subscription["secret"] not in (await client.get("/subscriptions")).text

    own_secret = new_secret()
    chosen = await client.post("/subscriptions", json={
        "agency": "dinas-pendidikan", "event_type": "eligibility.assessed", "url": "https://opd.example/b",
        "secret": own_secret})
    assert chosen.status_code == 201 and "secret" not in chosen.json()

    assert (await client.delete(f"/subscriptions/{subscription['id']}")).status_code == 204
    assert [s["active"] for s in (await client.get("/subscriptions")).json()] == [False, True]


async def test_a_subscription_for_an_unknown_agency_is_refused(client, db):
    response = await client.post("/subscriptions", json={
        "agency": "dinas-sosial", "event_type": "eligibility.assessed", "url": "https://opd.example/hooks"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "agency", "rule": "known_agency"}]
    assert await db.pool.fetchval("SELECT count(*) FROM subscriptions") == 0


async def test_an_admin_person_manages_agencies_like_the_admin_client(api_client, tokens):
    person = api_client(tokens.for_user("admin-demo"))
    assert (await person.post("/agencies", json=EDUCATION)).status_code == 201
    assert [a["code"] for a in (await person.get("/agencies")).json()] == ["dinas-pendidikan"]


async def test_unknown_subscriptions_are_not_found(client):
    unknown = "6f1c0a52-3d0e-4f55-9a39-0c3c1c7b2a10"
    for response in [await client.delete(f"/subscriptions/{unknown}"),
                     await client.post(f"/subscriptions/{unknown}/redrive"),
                     await client.get("/deliveries", params={"subscription_id": unknown})]:
        assert response.status_code == 404 and response.json()["detail"] == "no such subscription"


async def test_deliveries_show_counts_and_recent_items_without_payload(client, db, assessed):
    subscription, _ = await db.subscribe(demo.DEMO_AGENCY, "http://127.0.0.1:9/unreachable")
    await db.consume([assessed(), assessed()])
    await db.pool.execute("UPDATE deliveries SET status = 'failed', attempts = 15, last_error = 'HTTP 500'"
                          " WHERE id = (SELECT id FROM deliveries LIMIT 1)")

    everything = (await client.get("/deliveries", params={"subscription_id": str(subscription)})).json()
    assert everything["counts"] == {"pending": 1, "delivered": 0, "failed": 1}
    assert len(everything["items"]) == 2 and all("payload" not in item for item in everything["items"])
    failed = (await client.get("/deliveries", params={"status": "failed"})).json()["items"]
    assert [(i["attempts"], i["last_error"]) for i in failed] == [(15, "HTTP 500")]

    redriven = await client.post(f"/subscriptions/{subscription}/redrive")
    assert redriven.json() == {"requeued": 1, "messages": 0}
    assert (await client.get("/deliveries")).json()["counts"]["pending"] == 2


async def test_the_demo_subscription_is_created_once(client, db):
    url, secret = "http://127.0.0.1:8009/webhooks", new_secret()
    first = await ensure_demo_subscription(url, secret=secret, database_url=db.url, schema=db.schema)
    second = await ensure_demo_subscription(url, database_url=db.url, schema=db.schema)  # keys from the environment
    assert first == second and first.secret == secret, "the stored secret is kept when none is given"

    rows = await db.pool.fetch("SELECT agency, region_prefix, eligible_only FROM subscriptions WHERE ready_made IS NULL")
    assert [tuple(r) for r in rows] == [("dinas-pendidikan", "36", True)]
    # and the demo agencies' ready-made subscriptions, once, to the same receiver
    ready = await db.pool.fetch("SELECT agency, ready_made, url FROM subscriptions WHERE ready_made IS NOT NULL"
                                " ORDER BY agency, ready_made")
    assert [(r["agency"], r["ready_made"], r["url"]) for r in ready] == [
        ("dinas-kesehatan", "antenatal-care", url), ("dinas-kesehatan", "families-without-health-insurance", url),
        ("dinas-kesehatan", "toddler-growth", url), ("dinas-kesehatan", "toddler-immunisation", url),
        ("dinas-pendidikan", "dropout-risk", url),
        ("dinas-pendidikan", "sma-smk-placement", url)]
    profile = await db.pool.fetchval("SELECT profile FROM agencies WHERE code = 'dinas-pendidikan'")
    assert set(profile) == set(demo.DEMO_AGENCY.profile)
    listed = [s for s in (await client.get("/subscriptions")).json() if "ready_made" not in s]
    assert [(s["id"], s["url"]) for s in listed] == [(str(first.id), url)] and "secret" not in listed[0]

    rotated = await ensure_demo_subscription(url, secret=new_secret(), database_url=db.url, schema=db.schema)
    assert rotated.id == first.id and rotated.secret != secret, "a new secret replaces the old one"


async def test_ensure_demo_subscription_works_before_the_service_ever_ran(database_url, db):
    fresh_schema = db.schema + "_fresh"
    try:
        made = await ensure_demo_subscription("http://127.0.0.1:8009/webhooks", database_url=database_url,
                                              schema=fresh_schema)
        again = await ensure_demo_subscription("http://127.0.0.1:8009/webhooks", database_url=database_url,
                                               schema=fresh_schema)
        assert made == again and made.secret.startswith("whsec_")
    finally:
        await db.pool.execute(f'DROP SCHEMA IF EXISTS "{fresh_schema}" CASCADE')
