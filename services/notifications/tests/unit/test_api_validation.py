"""Requests the API refuses before touching the database, each with a reason."""

import httpx
import pytest
from fastapi import FastAPI

from ejsika_notifications import api


def no_database():
    raise AssertionError("an invalid request must not reach the database")


@pytest.fixture
async def client():
    app = FastAPI()
    app.include_router(api.routes(no_database))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


SUBSCRIPTION = {"agency": "dinas-pendidikan", "event_type": "eligibility.assessed",
                "filter": {"region_prefix": "3672"}, "url": "https://opd.example/webhooks"}


@pytest.mark.parametrize("body, reason", [
    ({"code": "Dinas Pendidikan", "name": "x", "profile": ["eligible"]}, "pattern"),
    ({"code": "dinas-pendidikan", "name": "x", "profile": ["eligible", "members.nik"]}, "unknown fields ['members.nik']"),
    ({"code": "dinas-pendidikan", "name": "x", "profile": []}, "at least 1"),
])
async def test_agencies_with_bad_codes_or_profiles_are_refused(client, body, reason):
    response = await client.post("/agencies", json=body)
    assert response.status_code == 422 and reason in response.text


@pytest.mark.parametrize("change, reason", [
    ({"event_type": "household.registered"}, "not a subscribable event type"),
    ({"filter": {"region_prefix": "367"}}, "regency/city (4)"),
    ({"url": "ftp://opd.example/x"}, "URL scheme should be 'http' or 'https'"),
    ({"secret": "hunter2"}, "must start with whsec_"),
    ({"filter": {"region_prefix": "36", "frequency": "daily"}}, "Extra inputs are not permitted"),
])
async def test_subscriptions_with_bad_fields_are_refused(client, change, reason):
    response = await client.post("/subscriptions", json=SUBSCRIPTION | change)
    assert response.status_code == 422 and reason in response.text


async def test_a_bad_delivery_status_filter_is_refused(client):
    response = await client.get("/deliveries", params={"status": "lost"})
    assert response.status_code == 422 and "pending" in response.text
