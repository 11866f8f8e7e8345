"""Who may call which route, decided before any database work (tokens of a local key).

What each role sees of the rows (an agency only its own) needs the database: see
tests/integration/test_agency_isolation.py.
"""

import uuid

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from ejsika_notifications import api, deliveries_api, feed_api
from ejsika_notifications.app import compose
from ejsika_notifications.crypto import SecretCipher, new_key
from ejsika_notifications.egress import Egress
from ejsika_notifications.metrics import DeliveryMetrics
from ejsika_notifications.settings import NotificationsSettings
from ejsika_runtime import problems
from ejsika_runtime.access import Access, api_routes, policy_of
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity


def no_database():
    raise AssertionError("a refused request must not reach the database")


SOME_ID = "6f1c0a52-3d0e-4f55-9a39-0c3c1c7b2a10"
SUBSCRIPTION = {"agency": "dinas-pendidikan", "event_type": "eligibility.assessed",
                "url": "https://93.184.216.34/hooks"}
AGENCY = {"code": "dinas-sosial", "name": "Dinas Sosial", "profile": ["eligible"]}
ROUTES = [
    ("POST", "/agencies", AGENCY),
    ("GET", "/agencies", None),
    ("GET", "/event-types", None),
    ("GET", "/ready-made", None),
    ("POST", "/agencies/dinas-pendidikan/ready-made", {}),
    ("POST", "/subscriptions", SUBSCRIPTION),
    ("GET", "/subscriptions", None),
    ("DELETE", f"/subscriptions/{SOME_ID}", None),
    ("POST", f"/subscriptions/{SOME_ID}/redrive", None),
    ("POST", f"/subscriptions/{SOME_ID}/reactivation", None),
    ("GET", "/deliveries", None),
    ("GET", "/messages", None),
    ("POST", f"/messages/{SOME_ID}/redelivery", None),
    ("POST", f"/subscriptions/{SOME_ID}/secret-rotation", None),
    ("GET", "/feed", None),
    ("POST", "/feed/ack", {"cursor": "WzFd"}),
]


@pytest.fixture(scope="module")
def idp():
    return LocalIdentity()


@pytest.fixture
async def client(idp):
    app = FastAPI()
    cipher = SecretCipher.from_setting(new_key())
    access = idp.install(Access(Settings(auth_issuer=ISSUER)))
    app.include_router(api.routes(access, no_database, cipher_of=lambda: cipher, egress=Egress()))
    app.include_router(deliveries_api.routes(access, no_database, cipher_of=lambda: cipher))
    app.include_router(feed_api.routes(access, no_database, DeliveryMetrics(CollectorRegistry())))
    problems.install(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def test_every_route_of_the_service_declares_its_roles():
    app = compose(NotificationsSettings(secrets_keys=new_key()), f"notifications_{uuid.uuid4().hex[:6]}").app()
    routes = list(api_routes(app.routes))
    declared = {(method, route.path_format): sorted(policy_of(route).roles)
                for route in routes if policy_of(route) for method in route.methods}
    open_routes = {route.path for route in routes if policy_of(route) is None}
    assert open_routes == {"/healthz", "/readyz", "/metrics", "/asyncapi.json"}, "the runtime's probes only"
    assert declared == {
        ("POST", "/agencies"): ["admin"],
        ("GET", "/agencies"): ["admin", "auditor"],
        ("GET", "/event-types"): ["admin", "agency", "auditor"],
        ("GET", "/ready-made"): ["admin", "agency", "auditor"],
        ("POST", "/agencies/{code}/ready-made"): ["admin"],
        ("POST", "/subscriptions"): ["admin", "agency"],
        ("GET", "/subscriptions"): ["admin", "agency", "auditor"],
        ("DELETE", "/subscriptions/{subscription_id}"): ["admin", "agency"],
        ("POST", "/subscriptions/{subscription_id}/redrive"): ["admin", "agency"],
        ("POST", "/subscriptions/{subscription_id}/reactivation"): ["admin", "agency"],
        ("GET", "/deliveries"): ["admin", "agency", "auditor"],
        ("GET", "/messages"): ["admin", "agency", "auditor"],
        ("POST", "/messages/{message_id}/redelivery"): ["admin", "agency"],
        ("POST", "/subscriptions/{subscription_id}/secret-rotation"): ["admin", "agency"],
        ("GET", "/feed"): ["agency"],
        ("POST", "/feed/ack"): ["agency"],
        ("POST", "/notifications/{notification_id}/answers"): ["agency"],
        ("GET", "/notifications/{notification_id}/answers"): ["agency", "auditor", "operator"],
        ("GET", "/agencies/{code}/figures"): ["admin", "agency", "auditor", "operator"],
        ("GET", "/processing-records"): ["auditor", "operator"],  # the runtime's record of processing
    }
    assert "/demo/subscription" not in app.openapi()["paths"], "the demo uses the admin API"


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == problems.MEDIA_TYPE
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.mark.parametrize("method, path, body", ROUTES)
@pytest.mark.parametrize("authorization, reason", [
    (None, "a bearer token is required"),
    ("Basic YWRtaW46YWRtaW4=", "the Authorization header must be 'Bearer <token>'"),
    ("Bearer not-a-jwt", "the token is not a JWT"),
])
async def test_every_route_wants_a_bearer_token(client, method, path, body, authorization, reason):
    headers = {"authorization": authorization} if authorization else {}
    response = await client.request(method, path, json=body, headers=headers)
    assert assert_problem(response, 401)["detail"] == reason
    assert response.headers["www-authenticate"].startswith('Bearer realm="ejsika"')


@pytest.mark.parametrize("method, path, body", ROUTES)
async def test_tokens_that_are_expired_or_of_another_key_or_audience_are_refused(client, idp, method, path, body):
    for token, reason in [
        (idp.token("admin", exp=1_000_000_000, iat=999_999_000), "the token has expired"),
        (LocalIdentity().token("admin"), "the token is invalid"),  # signed with another key of the same kid
        (idp.token("admin", aud=["another-system"]), "the token is not meant for e-JSiKa"),
        (idp.token("admin", iss="http://idp.test/realms/other"), "the token comes from another issuer"),
    ]:
        response = await client.request(method, path, json=body, headers={"authorization": f"Bearer {token}"})
        assert assert_problem(response, 401)["detail"] == reason


@pytest.mark.parametrize("method, path, body", ROUTES)
@pytest.mark.parametrize("role", ["pendamping", "supervisor", "operator"])
async def test_people_who_follow_families_are_refused_every_route(client, idp, method, path, body, role):
    """403, not 404: the routes are the agencies' and the admin's, and hide no household."""
    response = await client.request(method, path, json=body, headers=idp.headers(role))
    assert f"role {role} may not do this" in assert_problem(response, 403)["detail"]


@pytest.mark.parametrize("method, path", [("POST", "/agencies"), ("GET", "/agencies")])
async def test_an_agency_is_refused_the_agencies_openly(client, idp, method, path):
    """403, not the runtime's default 404 for agencies: these routes hide no household."""
    response = await client.request(method, path, json=AGENCY if method == "POST" else None,
                                    headers=idp.headers("agency", agency="dinas-pendidikan"))
    assert "role agency may not do this" in assert_problem(response, 403)["detail"]


@pytest.mark.parametrize("method, path, body", [r for r in ROUTES if r[0] != "GET"])
async def test_the_auditor_reads_but_never_writes(client, idp, method, path, body):
    response = await client.request(method, path, json=body, headers=idp.headers("auditor"))
    assert "role auditor may not do this" in assert_problem(response, 403)["detail"]


@pytest.mark.parametrize("claims", [{"agency": "dinas-kesehatan"}, {}, {"agency": ""}])
async def test_an_agency_subscribes_for_itself_only(client, idp, claims):
    """Refused before any database work: for another agency, or with no agency claim at all."""
    response = await client.post("/subscriptions", json=SUBSCRIPTION, headers=idp.headers("agency", **claims))
    assert assert_problem(response, 403)["detail"] == "an agency subscribes for itself only"


async def test_an_agency_may_subscribe_for_itself(client, idp):
    with pytest.raises(AssertionError, match="must not reach the database"):  # past every check
        await client.post("/subscriptions", json=SUBSCRIPTION,
                          headers=idp.headers("agency", agency="dinas-pendidikan"))


async def test_a_pendamping_who_is_also_auditor_only_reads(client, idp):
    """Roles are narrowed to the route's: the auditor role lets the person read, never write."""
    headers = idp.headers("pendamping", "auditor")
    with pytest.raises(AssertionError, match="must not reach the database"):
        await client.get("/agencies", headers=headers)
    assert_problem(await client.post("/agencies", json=AGENCY, headers=headers), 403)


async def test_writes_are_rate_limited_per_caller(idp):
    app = FastAPI()
    access = idp.install(Access(Settings(auth_issuer=ISSUER, write_rate_per_s=0.01, write_burst=3)))
    app.include_router(api.routes(access, no_database, cipher_of=lambda: None, egress=Egress()))
    problems.install(app)
    bad = AGENCY | {"code": "Bad Code"}  # refused by validation, should the limit let it through
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        headers = idp.headers("admin", sub="loop-client")
        answers = [(await client.post("/agencies", json=bad, headers=headers)).status_code for _ in range(3)]
        assert answers == [422] * 3, "the burst passes on to validation"
        limited = await client.post("/agencies", json=bad, headers=headers)
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        with pytest.raises(AssertionError, match="must not reach the database"):  # reads are not limited
            await client.get("/agencies", headers=headers)
        other = await client.post("/agencies", json=bad, headers=idp.headers("admin", sub="another-client"))
        assert other.status_code == 422, "another caller is not limited"
