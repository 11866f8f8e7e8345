"""Delivery metrics are labelled by agency: subscriptions come and go, the series stay bounded."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ejsika_notifications.domain.agencies import EDUCATION, HEALTH

pytestmark = pytest.mark.infra


async def test_the_subscriptions_of_one_agency_share_its_series(db, receivers, assessed):
    receiver = await receivers()
    for _ in range(3):  # e.g. an agency re-subscribing after each secret rotation
        await db.subscribe(EDUCATION, receiver.url)
    await db.subscribe(HEALTH, receiver.url)
    await db.consume([assessed()])
    registry = CollectorRegistry()
    worker = db.worker(registry=registry)

    await worker.drain_all()

    assert registry.get_sample_value("ejsika_deliveries_delivered_total", {"agency": EDUCATION.code}) == 3
    assert registry.get_sample_value("ejsika_deliveries_delivered_total", {"agency": HEALTH.code}) == 1
    assert registry.get_sample_value("ejsika_webhook_requests_total", {"agency": EDUCATION.code, "result": "ok"}) == 3
    await worker.dispatch()  # reports the pending gauge: nothing left, per agency
    assert "subscription=" not in generate_latest(registry).decode()
