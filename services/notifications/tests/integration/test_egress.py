"""The SSRF guard at subscribe time (HTTP API) and at delivery time (the worker), with real sockets."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace
from ipaddress import ip_address

import httpx
import pytest
from prometheus_client import CollectorRegistry
from standardwebhooks import Webhook

from ejsika_notifications.domain.agencies import EDUCATION
from ejsika_notifications.egress import Egress

from .conftest import FAST, LOCAL

pytestmark = pytest.mark.infra

AGENCY = {"code": "dinas-pendidikan", "name": "Dinas Pendidikan", "profile": ["region_code", "eligible"]}


class Zone:
    """A DNS whose answers a test changes; names it does not hold do not resolve."""

    def __init__(self, **names: str) -> None:
        self.names = {name.replace("_", "."): address for name, address in names.items()}
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int):
        self.lookups.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip_address(self.names[host])]


async def subscribe(client: httpx.AsyncClient, url: str) -> httpx.Response:
    await client.post("/agencies", json=AGENCY)
    return await client.post("/subscriptions", json={
        "agency": "dinas-pendidikan", "event_type": "eligibility.assessed", "url": url})


@pytest.mark.parametrize("url, reason", [
    ("http://localhost:8009/webhooks", "url resolves to a loopback address"),  # the system's resolver
    ("http://127.0.0.1:8009/webhooks", "url resolves to a loopback address"),
    ("http://0x7f.1:8009/webhooks", "url resolves to a loopback address"),
    ("http://[::ffff:127.0.0.1]:8009/", "url resolves to a loopback address"),
    ("http://192.168.10.20/", "url resolves to a private address"),
    ("http://169.254.169.254/latest/meta-data/", "url resolves to a link-local address"),
])
async def test_subscribing_an_internal_url_is_refused_with_the_rule_only(db, api_client, url, reason):
    response = await subscribe(api_client(egress=Egress()), url)
    assert response.status_code == 422
    assert response.json() == {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
                               "detail": reason, "errors": [{"field": "url", "rule": "destination"}]}
    assert await db.pool.fetchval("SELECT count(*) FROM subscriptions") == 0


async def test_local_receivers_may_subscribe_when_private_destinations_are_allowed(db, api_client, receivers):
    receiver = await receivers()
    client = api_client(egress=LOCAL)
    assert (await subscribe(client, receiver.url)).status_code == 201
    metadata = await subscribe(client, "http://169.254.169.254/latest/meta-data/")
    assert metadata.status_code == 422, "never the metadata endpoint"
    assert metadata.json()["detail"] == "url resolves to a link-local address"


async def test_a_subscription_made_while_local_receivers_were_allowed_is_refused_at_delivery(
    db, receivers, assessed
):
    receiver = await receivers()
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)  # allowed then
    await db.consume([assessed()])
    registry = CollectorRegistry()
    # a backoff long enough that the first drain cannot already hold the retry
    worker = db.worker(replace(FAST, max_attempts=2, backoff_base_s=0.5, backoff_cap_s=0.5), registry,
                       egress=Egress())  # and no longer

    await worker.drain_all()
    [row] = await db.deliveries(subscription)
    assert (row["status"], row["attempts"]) == ("pending", 1), "retried like any failure"
    assert row["last_error"] == "refused: url resolves to a loopback address"

    while (await db.deliveries(subscription))[0]["status"] == "pending":
        await asyncio.sleep(0.05)
        await worker.drain_all()
    [row] = await db.deliveries(subscription)
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "failed", 2, "refused: url resolves to a loopback address")
    assert receiver.requests == [], "the receiver was never contacted"
    assert registry.get_sample_value("ejsika_webhook_requests_total",
                                     {"agency": EDUCATION.code, "result": "refused"}) == 2


async def test_a_name_that_resolves_to_an_internal_address_by_delivery_time_is_not_contacted(
    db, api_client, receivers, assessed
):
    receiver = await receivers()
    zone = Zone(opd_test="93.184.216.34")  # public when the agency subscribes
    url = f"http://opd.test:{receiver.port}/webhooks"
    assert (await subscribe(api_client(egress=Egress(resolver=zone)), url)).status_code == 201
    await db.consume([assessed()])

    zone.names["opd.test"] = "127.0.0.1"  # then the name is pointed at the service's own host
    await db.worker(egress=Egress(resolver=zone)).drain_all()

    [row] = await db.deliveries()
    assert row["last_error"] == "refused: url resolves to a loopback address"
    assert receiver.requests == []
    # looked up when subscribing, then at each attempt (on a loaded machine a retry falls due within the drain)
    assert zone.lookups[0] == "opd.test" and len(zone.lookups) >= 2 and set(zone.lookups) == {"opd.test"}


async def test_the_connection_goes_to_the_address_that_was_checked(db, receivers, assessed):
    """No second lookup between the check and the connection (DNS rebinding): `opd.test` exists in
    no real DNS, so the POST can only have reached the receiver through the checked answer."""
    receiver = await receivers()
    zone = Zone(opd_test="127.0.0.1")
    subscription, secret = await db.subscribe(EDUCATION, f"http://opd.test:{receiver.port}/webhooks")
    await db.consume([assessed()])

    await db.worker(egress=Egress(allow_private=True, resolver=zone)).drain_all()

    [request] = receiver.requests
    assert request.headers["host"] == f"opd.test:{receiver.port}", "the Host header keeps the name"
    assert Webhook(secret).verify(request.body, request.headers)
    assert zone.lookups == ["opd.test"]
    assert [r["status"] for r in await db.deliveries(subscription)] == ["delivered"]


async def test_a_name_that_does_not_resolve_fails_as_an_unreachable_agency(db, assessed):
    subscription, _ = await db.subscribe(EDUCATION, "http://gone.opd.test/webhooks")
    await db.consume([assessed()])

    await db.worker(egress=Egress(resolver=Zone())).drain_all()

    [row] = await db.deliveries(subscription)
    assert (row["status"], row["last_error"]) == ("pending", "ConnectError")
