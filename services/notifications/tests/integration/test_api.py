"""The HTTP API on a real PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from ejsika_notifications import api, demo
from ejsika_notifications.demo import ensure_demo_subscription
from ejsika_notifications.domain.subscriptions import new_secret

pytestmark = pytest.mark.infra

EDUCATION = {"code": "dinas-pendidikan", "name": "Dinas Pendidikan",
             "profile": ["household_id", "eligible", "member_counts.children_entering_sma"]}


@pytest.fixture
async def client(db):
    app = FastAPI()
    app.include_router(api.routes(lambda: db.pool))
    app.include_router(demo.routes(lambda: db.pool))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_an_agency_subscribes_and_its_secret_is_shown_once(client):
    assert (await client.post("/agencies", json=EDUCATION)).status_code == 201
    again = await client.post("/agencies", json=EDUCATION)
    assert again.status_code == 409 and "exists" in again.text

    created = await client.post("/subscriptions", json={
        "agency": "dinas-pendidikan", "event_type": "eligibility.assessed",
        "filter": {"region_prefix": "3672", "eligible_only": True}, "url": "https://opd.example/hooks"})
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["secret"].startswith("whsec_")
    assert subscription["filter"] == {"region_prefix": "3672", "eligible_only": True}

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


async def test_a_subscription_for_an_unknown_agency_is_refused(client):
    response = await client.post("/subscriptions", json={
        "agency": "dinas-sosial", "event_type": "eligibility.assessed", "url": "https://opd.example/hooks"})
    assert response.status_code == 400 and "unknown agency dinas-sosial" in response.text


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
    assert redriven.json() == {"requeued": 1}
    assert (await client.get("/deliveries")).json()["counts"]["pending"] == 2


async def test_the_demo_subscription_is_created_once(client, db):
    url, secret = "http://127.0.0.1:8009/webhooks", new_secret()
    first = await client.post("/demo/subscription", json={"url": url, "secret": secret})
    second = await client.post("/demo/subscription", json={"url": url, "secret": secret})
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"] and "secret" not in first.json()

    direct = await ensure_demo_subscription(url, database_url=db.url, schema=db.schema)
    assert (str(direct.id), direct.secret) == (first.json()["id"], secret)
    rows = await db.pool.fetch("SELECT agency, region_prefix, eligible_only FROM subscriptions")
    assert [tuple(r) for r in rows] == [("dinas-pendidikan", "36", True)]
    profile = await db.pool.fetchval("SELECT profile FROM agencies WHERE code = 'dinas-pendidikan'")
    assert set(profile) == set(demo.DEMO_AGENCY.profile)


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
