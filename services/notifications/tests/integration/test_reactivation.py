"""A subscription the platform disabled (its endpoint answered 410 Gone) is delivered to again once its
agency reactivates it: POST /subscriptions/{id}/reactivation, on the real PostgreSQL and a local receiver."""

from __future__ import annotations

import uuid

import pytest

from ejsika_notifications.domain.agencies import EDUCATION, HEALTH
from ejsika_notifications.domain.deliveries import PlannedDelivery
from ejsika_notifications.store import deliveries

pytestmark = pytest.mark.infra


async def queue(db, subscription: uuid.UUID) -> None:
    planned = PlannedDelivery(subscription, uuid.uuid4(), uuid.uuid4(), {"kind": "school_dropout_risk"},
                              reference="ref" + "0" * 23, event_type="compliance.escalated")
    async with db.pool.acquire() as conn:
        assert await deliveries.queue(conn, [planned]) == 1


async def test_a_subscription_gone_410_delivers_again_once_its_agency_reactivates_it(
        db, receivers, api_client, tokens):
    receiver = await receivers(statuses=[410])  # gone once, then 200
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await queue(db, subscription)
    worker = db.worker()
    await worker.drain_all()
    assert (await db.pool.fetchval("SELECT active FROM subscriptions WHERE id = $1", subscription)) is False

    health = api_client(tokens.for_client("agency-dinas-kesehatan"))
    assert (await health.post(f"/subscriptions/{subscription}/reactivation")).status_code == 404, "not theirs"
    education = api_client(tokens.for_client("agency-dinas-pendidikan"))
    answer = await education.post(f"/subscriptions/{subscription}/reactivation")

    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is True and "disabled_reason" not in answer.json()
    assert (await education.post(f"/subscriptions/{subscription}/reactivation")).json() == answer.json(), \
        "reactivating an active subscription changes nothing"
    await queue(db, subscription)
    await worker.drain_all()
    assert [r.status for r in receiver.requests] == [410, 200], "the new notification went out"
    statuses = await db.pool.fetch("SELECT status FROM deliveries WHERE subscription_id = $1 ORDER BY seq",
                                   subscription)
    assert [r["status"] for r in statuses] == ["failed", "delivered"], "what failed with it waits for a redrive"


async def test_a_subscription_its_agency_ended_is_not_reactivated(db, receivers, api_client):
    receiver = await receivers()
    subscription, _ = await db.subscribe(HEALTH, receiver.url)
    admin = api_client()
    assert (await admin.delete(f"/subscriptions/{subscription}")).status_code == 204

    answer = await admin.post(f"/subscriptions/{subscription}/reactivation")

    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await db.pool.fetchval("SELECT active FROM subscriptions WHERE id = $1", subscription)) is False
    assert (await admin.post(f"/subscriptions/{uuid.uuid4()}/reactivation")).status_code == 404
