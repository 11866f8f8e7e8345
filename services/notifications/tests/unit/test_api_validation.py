"""Requests the API refuses before touching the database, each with a reason.

The routes are guarded as in the service, with tokens of a local key (ejsika_runtime.testing);
the admin may do everything, so what is refused here is refused for the request itself.
"""

import socket
from ipaddress import ip_address

import httpx
import pytest
from fastapi import FastAPI

from ejsika_notifications import api, deliveries_api
from ejsika_notifications.crypto import SecretCipher, new_key
from ejsika_notifications.egress import Egress
from ejsika_runtime import problems
from ejsika_runtime.access import Access
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity


def no_database():
    raise AssertionError("an invalid request must not reach the database")


# A DNS of our own: names of the tests resolve to what the test needs, all others to nothing.
ZONE = {"opd.example": ["93.184.216.34"], "internal.opd.example": ["10.1.2.3"],
        "mixed.opd.example": ["93.184.216.34", "192.168.0.7"], "metadata.opd.example": ["169.254.169.254"],
        "v6.opd.example": ["2606:4700::1", "fd12::1"]}


async def fake_resolver(host: str, port: int):
    if host not in ZONE:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return [ip_address(a) for a in ZONE[host]]


def app_of(idp: LocalIdentity) -> FastAPI:
    app = FastAPI()
    cipher = SecretCipher.from_setting(new_key())
    access = idp.install(Access(Settings(auth_issuer=ISSUER)))
    app.include_router(api.routes(access, no_database, cipher_of=lambda: cipher,
                                  egress=Egress(resolver=fake_resolver)))
    app.include_router(deliveries_api.routes(access, no_database, cipher_of=lambda: cipher))
    problems.install(app)
    return app


@pytest.fixture
async def client():
    idp = LocalIdentity()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_of(idp)), base_url="http://test",
                                 headers=idp.headers("admin")) as client:
        yield client


def refused(response: httpx.Response, *errors: tuple[str, str]) -> bool:
    """A 422 problem document naming exactly these (field, rule) pairs."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == problems.MEDIA_TYPE
    body = response.json()
    assert (body["status"], body["title"]) == (422, "Unprocessable Entity")
    assert sorted((e["field"], e["rule"]) for e in body["errors"]) == sorted(errors), body
    return True


SUBSCRIPTION = {"agency": "dinas-pendidikan", "event_type": "eligibility.assessed",
                "filter": {"region_prefix": "3672"}, "url": "https://opd.example/webhooks"}


# Only the field and the rule come back: a rule's message may hold the submitted value.
@pytest.mark.parametrize("body, error", [
    ({"code": "Dinas Pendidikan", "name": "x", "profile": ["eligible"]}, ("code", "string_pattern_mismatch")),
    ({"code": "dinas-pendidikan", "name": "x", "profile": ["eligible", "members.income"]}, ("profile", "value_error")),
    ({"code": "dinas-pendidikan", "name": "x", "profile": ["household_id"]}, ("profile", "value_error")),
    ({"code": "dinas-pendidikan", "name": "x", "profile": []}, ("profile", "too_short")),
    ({"code": "dinas-pendidikan", "name": "", "profile": ["eligible"]}, ("name", "string_too_short")),
    ({"code": "dinas-pendidikan", "profile": ["eligible"]}, ("name", "missing")),
])
async def test_agencies_with_bad_codes_or_profiles_are_refused(client, body, error):
    response = await client.post("/agencies", json=body)
    assert refused(response, error)
    assert "members.income" not in response.text and "Dinas Pendidikan" not in response.text, "nothing is echoed"


@pytest.mark.parametrize("change, error", [
    ({"event_type": "household.registered"}, ("event_type", "value_error")),
    ({"filter": {"region_prefix": "367"}}, ("filter.region_prefix", "value_error")),
    ({"url": "ftp://opd.example/x"}, ("url", "url_scheme")),
    ({"secret": "hunter2"}, ("secret", "value_error")),
    ({"filter": {"region_prefix": "36", "frequency": "daily"}}, ("filter.(unknown field)", "extra_forbidden")),
    # the DCI-shaped criteria (issue 10): each refusal names its field and rule
    ({"frequency": "hourly"}, ("frequency", "literal_error")),
    ({"filter": {"member_age": {"min": 10, "max": 5}}}, ("filter.member_age", "age_range")),
    ({"filter": {"member_age": {"min": -1}}}, ("filter.member_age.min", "age")),
    ({"filter": {"member_age": {"max": 121}}}, ("filter.member_age.max", "age")),
    ({"filter": {"member_age": {"min": "5"}}}, ("filter.member_age.min", "int_type")),
    ({"filter": {"school_levels": ["sarjana"]}}, ("filter.school_levels[0]", "literal_error")),
    ({"filter": {"enrolment_statuses": ["active", "active"]}}, ("filter.enrolment_statuses", "unique")),
    ({"filter": {"programmes": ["JSCM"]}}, ("filter.programmes[0]", "string_pattern_mismatch")),
    ({"filter": {"escalation_kinds": ["school_dropout_risk"]}}, ("filter.escalation_kinds", "applies_to")),
    ({"event_type": "compliance.escalated", "filter": {"eligible_only": True}}, ("filter.eligible_only", "applies_to")),
    ({"event_type": "compliance.escalated", "filter": {"escalation_kinds": ["flood"]}},
     ("filter.escalation_kinds[0]", "literal_error")),
])
async def test_subscriptions_with_bad_fields_are_refused(client, change, error):
    response = await client.post("/subscriptions", json=SUBSCRIPTION | change)
    assert refused(response, error)
    assert "hunter2" not in response.text and "ftp://" not in response.text, "nothing is echoed"


@pytest.mark.parametrize("eligible_only", [0, 1, "true", "false", None, "yes"])
async def test_eligible_only_takes_json_booleans_only(client, eligible_only):
    response = await client.post("/subscriptions", json=SUBSCRIPTION | {
        "filter": {"region_prefix": "3672", "eligible_only": eligible_only}})
    assert refused(response, ("filter.eligible_only", "bool_type"))


async def test_a_body_that_is_not_json_is_a_bad_request(client):
    response = await client.post("/subscriptions", content=b'{"agency": ', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.headers["content-type"] == problems.MEDIA_TYPE
    assert response.json()["detail"] == "the body is not valid JSON"


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:8009/webhooks", "url resolves to a loopback address"),
    ("http://0x7f.1/", "url resolves to a loopback address"),
    ("http://2130706433/", "url resolves to a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "url resolves to a loopback address"),
    ("http://[::1]:8080/", "url resolves to a loopback address"),
    ("http://10.0.0.5/hooks", "url resolves to a private address"),
    ("http://169.254.169.254/latest/meta-data/", "url resolves to a link-local address"),
    ("http://100.64.1.1/", "url resolves to a shared (CGNAT) address"),
    ("http://0.0.0.0:8004/", "url resolves to an unspecified address"),
    ("https://internal.opd.example/hooks", "url resolves to a private address"),
    ("https://mixed.opd.example/hooks", "url resolves to a private address"),
    ("https://metadata.opd.example/hooks", "url resolves to a link-local address"),
    ("https://v6.opd.example/hooks", "url resolves to a private address"),
])
async def test_subscriptions_to_internal_addresses_are_refused_naming_only_the_rule(client, url, reason):
    response = await client.post("/subscriptions", json=SUBSCRIPTION | {"url": url})
    assert response.status_code == 422, response.text
    assert response.json() == {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
                               "detail": reason, "errors": [{"field": "url", "rule": "destination"}]}, \
        "the answer names the rule and echoes nothing"


@pytest.mark.parametrize("url", ["https://opd.example/webhooks", "https://unknown-yet.opd.example/hooks",
                                 "https://93.184.216.34/hooks", "http://[2606:4700::1]:8443/"])
async def test_public_and_not_yet_resolvable_urls_pass_the_check(client, url):
    with pytest.raises(AssertionError, match="must not reach the database"):  # it got past the check
        await client.post("/subscriptions", json=SUBSCRIPTION | {"url": url})


@pytest.mark.parametrize("params, error", [
    ({"status": "lost"}, ("query.status", "literal_error")),
    ({"limit": "0"}, ("query.limit", "greater_than_equal")),
    ({"limit": "501"}, ("query.limit", "less_than_equal")),
    ({"subscription_id": "not-a-uuid"}, ("query.subscription_id", "uuid_parsing")),
])
async def test_bad_delivery_filters_are_refused(client, params, error):
    assert refused(await client.get("/deliveries", params=params), error)


async def test_a_subscription_list_for_a_malformed_agency_code_is_refused(client):
    assert refused(await client.get("/subscriptions", params={"agency": "Dinas Pendidikan"}),
                   ("query.agency", "string_pattern_mismatch"))
