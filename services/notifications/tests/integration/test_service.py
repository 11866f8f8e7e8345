"""The composed service on real Kafka, PostgreSQL and Keycloak: an assessment on the topic reaches
the agency, and what left is on the record of processing."""

from __future__ import annotations

import contextlib
import uuid

import httpx
import pytest
from standardwebhooks import Webhook

from ejsika_contracts import ELIGIBILITY
from ejsika_notifications.app import compose
from ejsika_notifications.domain.agencies import EDUCATION_PROFILE
from ejsika_notifications.domain.subscriptions import new_secret
from ejsika_notifications.settings import NotificationsSettings
from ejsika_runtime.embedded import free_port
from ejsika_runtime.kafka import new_producer

from .conftest import ADMIN_CLIENT, bearer

pytestmark = pytest.mark.infra


async def test_an_eligible_family_on_the_topic_is_delivered_to_the_demo_agency(
    database_url, kafka_bootstrap, auth_issuer, tokens, receivers, assessed, wait_for
):
    receiver = await receivers()
    secret = new_secret()
    name = f"notifications_{uuid.uuid4().hex[:6]}"  # own schema and consumer group
    settings = NotificationsSettings(
        database_url=database_url, kafka_bootstrap=kafka_bootstrap, http_port=free_port(),
        demo_webhook_url=receiver.url, demo_webhook_secret=secret, delivery_poll_interval_s=0.5,
        auth_issuer=auth_issuer,
        # one consumer per topic (it consumes four): a consumer per partition would be 24 members
        # joining one group, rebalance after rebalance, before the first event is read
        consumer_concurrency=1,
    )
    service = compose(settings, name)
    app = service.app()
    eligible, not_eligible, elsewhere = assessed(), assessed(eligible=False), assessed(region_code="3101011001")
    producer = new_producer(kafka_bootstrap, "notifications-test")

    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        # The demo subscription is made by the delivery loop once the service runs: an event matched
        # before it exists is, rightly, told to no one.
        await wait_for(lambda: service.pool.fetchval("SELECT count(*) FROM subscriptions"), timeout=60)
        await producer.start()
        stack.push_async_callback(producer.stop)
        for event in (eligible, not_eligible, elsewhere):
            await producer.send_and_wait(ELIGIBILITY.name, event.to_bytes(), key=event.key())

        async def delivered_ids():
            sent = [item["id"] for r in receiver.requests for item in Webhook(secret).verify(
                r.body, r.headers)["notifications"]]
            ids = {r["event_id"] for r in await service.pool.fetch(  # the events the notifications told of
                "SELECT event_id::text FROM deliveries WHERE id = ANY($1::uuid[])", sent)}
            return ids if str(eligible.id) in ids else None

        ids = await wait_for(delivered_ids, timeout=120)
        assert str(not_eligible.id) not in ids and str(elsewhere.id) not in ids

        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        stack.push_async_callback(client.aclose)

        async def delivered_metric():
            # The receiver has the POST before the worker records the acknowledgement.
            text = (await client.get("/metrics")).text
            return 'ejsika_deliveries_delivered_total{agency="dinas-pendidikan"}' in text

        assert await wait_for(delivered_metric, timeout=10)
        assert (await client.get("/deliveries")).status_code == 401, "no token, no deliveries"
        admin = bearer(tokens.for_client(ADMIN_CLIENT))
        counts = (await client.get("/deliveries", headers=admin)).json()["counts"]
        assert counts["delivered"] >= 1 and counts["failed"] == 0
        [subscription] = [s for s in (await client.get("/subscriptions", headers=admin)).json()
                          if "ready_made" not in s]  # the demo's eligibility subscription, beside its ready-made ones

        # What left, on the record of processing: read by the auditor, and by the operator of the
        # family's programme (the consumer remembered its scope), not by another programme's.
        household = str(eligible.data.household_id)
        trail = await client.get("/processing-records", params={"household_id": household},
                                 headers=bearer(tokens.for_user("auditor-demo")))
        assert trail.status_code == 200, trail.text
        [shared] = [r for r in trail.json()["items"] if r["action"] == "share"]
        assert (shared["subject"], shared["role"], shared["channel"]) == (
            "dinas-pendidikan", "agency", f"webhook {subscription['id']}")
        # what an eligibility decision carries of the profile: the family is not in the projection here
        assert set(shared["fields"]) == {"region_code", "programme", "eligible", "member_counts.school_children",
                                         "member_counts.children_entering_sma"} < EDUCATION_PROFILE
        operator = await client.get("/processing-records", params={"household_id": household},
                                    headers=bearer(tokens.for_user("operator-jamsosratu")))
        assert [r["action"] for r in operator.json()["items"]] == ["share"]
        other = await client.get("/processing-records", params={"household_id": household},
                                 headers=bearer(tokens.for_user("operator-jscm")))
        assert other.status_code == 404
        not_shared = await client.get("/processing-records", params={"household_id": str(not_eligible.data.household_id)},
                                      headers=bearer(tokens.for_user("auditor-demo")))
        assert not_shared.json()["items"] == [], "a family that matched no subscription was not shared"
