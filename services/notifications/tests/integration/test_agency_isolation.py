"""Each agency's system sees and manages its own subscriptions and deliveries only; the auditor
reads everything and writes nothing; the people who follow families have no business here.

Real PostgreSQL and real Keycloak tokens: the agencies are the realm's clients
agency-dinas-pendidikan and agency-dinas-kesehatan, whose tokens carry `agency=<code>`.
"""

from __future__ import annotations

import pytest

from ejsika_notifications.domain.agencies import EDUCATION, HEALTH
from ejsika_runtime.testing import LocalIdentity

from .conftest import bearer

pytestmark = pytest.mark.infra


def agency_body(agency) -> dict:
    return {"code": agency.code, "name": agency.name, "profile": sorted(agency.profile)}


def subscription_body(agency: str, path: str) -> dict:
    return {"agency": agency, "event_type": "eligibility.assessed", "filter": {"region_prefix": "36"},
            "url": f"https://opd.example/{path}"}


@pytest.fixture
async def world(api_client, tokens):
    """Both agencies registered by the admin, each with one subscription made by its own system."""
    admin = api_client()
    for agency in (EDUCATION, HEALTH):
        assert (await admin.post("/agencies", json=agency_body(agency))).status_code == 201
    education = api_client(tokens.for_client("agency-dinas-pendidikan"))
    health = api_client(tokens.for_client("agency-dinas-kesehatan"))
    made = {}
    for client, code in ((education, EDUCATION.code), (health, HEALTH.code)):
        response = await client.post("/subscriptions", json=subscription_body(code, code))
        assert response.status_code == 201, response.text
        assert response.json()["agency"] == code and response.json()["secret"].startswith("whsec_")
        made[code] = response.json()["id"]
    return admin, education, health, made


async def test_an_agency_subscribes_for_itself_only(world, db):
    _, education, _, made = world
    refused = await education.post("/subscriptions", json=subscription_body(HEALTH.code, "not-mine"))
    assert refused.status_code == 403 and refused.json()["detail"] == "an agency subscribes for itself only"
    rows = await db.pool.fetch("SELECT id::text, agency FROM subscriptions ORDER BY created_at")
    assert [tuple(r) for r in rows] == [(made[EDUCATION.code], EDUCATION.code), (made[HEALTH.code], HEALTH.code)]


async def test_another_agencys_subscription_is_not_found(world, db):
    _, education, health, made = world
    theirs = made[HEALTH.code]
    for response in [await education.delete(f"/subscriptions/{theirs}"),
                     await education.post(f"/subscriptions/{theirs}/redrive"),
                     await education.get("/deliveries", params={"subscription_id": theirs})]:
        assert response.status_code == 404, response.text
        assert response.json()["detail"] == "no such subscription", "the same answer as for one that does not exist"
    assert await db.pool.fetchval("SELECT active FROM subscriptions WHERE id = $1::uuid", theirs) is True

    # its own it manages
    assert (await health.post(f"/subscriptions/{theirs}/redrive")).json() == {"requeued": 0, "messages": 0}
    assert (await health.delete(f"/subscriptions/{theirs}")).status_code == 204
    assert await db.pool.fetchval("SELECT active FROM subscriptions WHERE id = $1::uuid", theirs) is False


async def test_an_agency_lists_its_own_subscriptions_whatever_it_asks_for(world):
    admin, education, _, made = world
    for params in ({}, {"agency": HEALTH.code}, {"agency": EDUCATION.code}, {"active": "true"}):
        listed = (await education.get("/subscriptions", params=params)).json()
        assert [s["id"] for s in listed] == [made[EDUCATION.code]], params
        assert "secret" not in listed[0]
    everything = (await admin.get("/subscriptions")).json()
    assert sorted(s["id"] for s in everything) == sorted(made.values())
    asked = (await admin.get("/subscriptions", params={"agency": HEALTH.code})).json()
    assert [s["id"] for s in asked] == [made[HEALTH.code]], "the admin's filter is honoured"


async def test_an_agency_sees_its_own_deliveries_only(world, db, assessed):
    _, education, health, made = world
    await db.consume([assessed(), assessed(), assessed()])  # Cilegon: both subscriptions match
    await db.pool.execute("UPDATE deliveries SET status = 'failed', attempts = 15, last_error = 'HTTP 500'"
                          " WHERE subscription_id = $1::uuid", made[HEALTH.code])

    mine = (await education.get("/deliveries")).json()
    assert mine["counts"] == {"pending": 3, "delivered": 0, "failed": 0}, "not the other agency's failures"
    assert {i["subscription_id"] for i in mine["items"]} == {made[EDUCATION.code]} and len(mine["items"]) == 3
    failed = (await education.get("/deliveries", params={"status": "failed"})).json()
    assert failed["items"] == []

    theirs = (await health.get("/deliveries")).json()
    assert theirs["counts"] == {"pending": 0, "delivered": 0, "failed": 3}
    assert {i["subscription_id"] for i in theirs["items"]} == {made[HEALTH.code]}
    own = (await health.get("/deliveries", params={"subscription_id": made[HEALTH.code]})).json()
    assert own["counts"]["failed"] == 3
    assert (await health.post(f"/subscriptions/{made[HEALTH.code]}/redrive")).json() == {"requeued": 3, "messages": 0}


async def test_the_auditor_reads_everything_and_writes_nothing(world, api_client, tokens, db, assessed):
    _, _, _, made = world
    await db.consume([assessed()])
    auditor = api_client(tokens.for_user("auditor-demo"))

    assert {a["code"] for a in (await auditor.get("/agencies")).json()} == {EDUCATION.code, HEALTH.code}
    assert sorted(s["id"] for s in (await auditor.get("/subscriptions")).json()) == sorted(made.values())
    assert (await auditor.get("/deliveries")).json()["counts"]["pending"] == 2

    for response in [
        await auditor.post("/agencies", json={"code": "dinas-sosial", "name": "Dinas Sosial", "profile": ["eligible"]}),
        await auditor.post("/subscriptions", json=subscription_body(EDUCATION.code, "auditor")),
        await auditor.delete(f"/subscriptions/{made[EDUCATION.code]}"),
        await auditor.post(f"/subscriptions/{made[EDUCATION.code]}/redrive"),
    ]:
        assert response.status_code == 403, response.text
        assert response.json()["detail"].startswith("role auditor may not do this")
    assert await db.pool.fetchval("SELECT count(*) FROM subscriptions WHERE active") == 2
    assert await db.pool.fetchval("SELECT count(*) FROM agencies") == 2


async def test_an_agency_may_not_touch_the_agencies(world):
    """Refused openly (403): the runtime hides routes from agencies by default (404), but these
    declare no hiding, having no household to hide."""
    _, education, _, _ = world
    for response in [await education.get("/agencies"),
                     await education.post("/agencies", json=agency_body(EDUCATION) | {"code": "dinas-sosial"})]:
        assert response.status_code == 403 and "role agency may not do this" in response.json()["detail"]


@pytest.mark.parametrize("user", ["pendamping-demo", "supervisor-cilegon", "operator-jamsosratu"])
async def test_people_who_follow_families_are_refused_every_route(world, api_client, tokens, user):
    """403 everywhere: they are not hidden from (only agencies may be), and nothing here is theirs."""
    _, _, _, made = world
    person = api_client(tokens.for_user(user))
    some = made[EDUCATION.code]
    for response in [
        await person.get("/agencies"),
        await person.post("/agencies", json=agency_body(EDUCATION)),
        await person.get("/subscriptions"),
        await person.post("/subscriptions", json=subscription_body(EDUCATION.code, "person")),
        await person.delete(f"/subscriptions/{some}"),
        await person.post(f"/subscriptions/{some}/redrive"),
        await person.get("/deliveries"),
    ]:
        assert response.status_code == 403, response.text
        assert response.json()["detail"].startswith(f"role {user.split('-')[0]} may not do this")


async def test_the_caseworker_app_is_refused_too(world, api_client, tokens):
    app = api_client(tokens.for_client("caseworker-app"))  # a client with the pendamping role
    assert (await app.get("/deliveries")).status_code == 403


async def test_without_a_valid_token_nothing_is_answered(world, api_client, auth_issuer):
    client = api_client()
    for headers, detail in [({"authorization": ""}, "a bearer token is required"),
                            (bearer(LocalIdentity().token("admin", iss=auth_issuer)),
                             "the token is signed with an unknown key")]:
        response = await client.get("/subscriptions", headers=headers)
        assert response.status_code == 401 and response.json()["detail"] == detail
        assert response.headers["www-authenticate"].startswith('Bearer realm="ejsika"')
