"""The shared guard: token checks, role narrowing, scope, rate limit, problem answers, limits.

The identity provider's key set is replaced by a local RSA key here (a fake key source for a unit
test); the integration and e2e tests use the real Keycloak.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter
from pydantic import BaseModel, field_validator

from ejsika_runtime.access import Caller, WriteRateLimit, api_routes, policy_of
from ejsika_runtime.auth import Principal, Role, principal_from
from ejsika_runtime.problems import MEDIA_TYPE, Problem, field_path
from ejsika_runtime.scopes import HouseholdScope, covers
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity

IDP = LocalIdentity()
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
MIGRATIONS = Path(__file__).parent


def token(roles=("operator",), **claims) -> str:
    return IDP.token(*roles, **claims)


class Even(BaseModel):
    number: int

    @field_validator("number")
    @classmethod
    def _even(cls, number: int) -> int:
        if number % 2:
            raise ValueError("must be even; 3601014101900001 would be masked")
        return number


def make_service(**settings) -> Service:
    service = Service("test", Settings(auth_issuer=ISSUER, **settings), MIGRATIONS)
    IDP.install(service.access)
    router = APIRouter()

    @router.get("/things/{thing_id:uuid}")
    async def read(thing_id: UUID, caller: Caller = service.access.allow(Role.OPERATOR, Role.AUDITOR, purpose="p")) -> dict:
        if thing_id.int == 0:
            raise Problem(404, "no such thing")
        return {"roles": sorted(caller.principal.roles), "channel": caller.channel}

    @router.post("/things")
    async def write(body: dict, caller: Caller = service.access.allow(Role.OPERATOR, purpose="p")) -> dict:
        return {"ok": True}

    @router.post("/even")
    async def even(body: Even, caller: Caller = service.access.allow(Role.OPERATOR, purpose="p")) -> dict:
        return {"ok": True}

    service.router.include_router(router)
    return service


@pytest.fixture
def client():
    app = make_service(write_burst=2, write_rate_per_s=0.5, max_body_bytes=2048).app()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def bearer(value: str) -> dict:
    return {"authorization": f"Bearer {value}"}


async def test_a_missing_or_bad_token_is_401_with_a_challenge_and_a_reason(client):
    cases = {
        "a bearer token is required": {},
        "the Authorization header must be 'Bearer <token>'": {"authorization": "Basic abc"},
        "the token is not a JWT": bearer("not-a-jwt"),
        "the token has expired": bearer(token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)),
        "the token is not meant for e-JSiKa": bearer(token(aud="another-api")),
        "the token comes from another issuer": bearer(token(iss="http://evil.test/realms/ejsika")),
        "the token is signed with an unknown key": bearer(token(kid="k2")),
        "the token is invalid": bearer(token(key=OTHER_KEY)),
        "the token's algorithm is not accepted": bearer(jwt.encode({"sub": "x"}, "secret-of-32-bytes-at-least-000000", algorithm="HS256")),
    }
    for reason, headers in cases.items():
        answer = await client.get(f"/things/{uuid4()}", headers=headers)
        assert answer.status_code == 401, reason
        assert answer.headers["content-type"] == MEDIA_TYPE
        assert answer.json()["detail"] == reason
        assert answer.headers["www-authenticate"].startswith('Bearer realm="ejsika"')


async def test_roles_are_narrowed_to_the_route_and_refusals_say_why(client):
    answer = await client.get(f"/things/{uuid4()}", headers=bearer(token(roles=["auditor", "pendamping"])))
    assert answer.status_code == 200 and answer.json() == {"roles": ["auditor"], "channel": "GET /things/{thing_id}"}
    refused = await client.post("/things", json={}, headers=bearer(token(roles=["auditor"])))
    assert refused.status_code == 403 and "operator" in refused.json()["detail"]
    hidden = await client.get(f"/things/{uuid4()}", headers=bearer(token(roles=["agency"])))
    assert hidden.status_code == 404
    no_role = await client.get(f"/things/{uuid4()}", headers=bearer(token(roles=["offline_access"])))
    assert no_role.status_code == 403


async def test_writes_are_rate_limited_per_caller_with_retry_after(client):
    operator = bearer(token())
    assert [(await client.post("/things", json={}, headers=operator)).status_code for _ in range(2)] == [200, 200]
    limited = await client.post("/things", json={}, headers=operator)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    other = bearer(token(sub="user-2"))
    assert (await client.post("/things", json={}, headers=other)).status_code == 200
    # reads are not limited
    assert (await client.get(f"/things/{uuid4()}", headers=operator)).status_code == 200


async def test_limits_and_errors_answer_problem_documents_without_echoing_values(client):
    operator = bearer(token(sub="limits"))
    big = await client.post("/things", content=b"{" + b" " * 4096 + b"}", headers={**operator, "content-type": "application/json"})
    assert big.status_code == 413 and big.headers["content-type"] == MEDIA_TYPE
    nul = await client.post("/things", json={"name": "ANI\u0000"}, headers=operator)
    assert nul.status_code == 422 and nul.json()["errors"] == [{"field": "body", "rule": "nul_character"}]
    assert (await client.get("/things?x=%00", headers=operator)).status_code == 422
    malformed = await client.post("/things", content=b"{not json", headers={**operator, "content-type": "application/json"})
    assert malformed.status_code == 400
    invalid = await client.post("/things", json=["3601014101900001"], headers=operator)
    assert invalid.status_code == 422 and "3601014101900001" not in invalid.text
    assert invalid.json()["errors"][0]["field"] == "body"
    not_uuid = await client.get("/things/batch", headers=operator)
    assert not_uuid.status_code in (404, 405) and not_uuid.headers["content-type"] == MEDIA_TYPE
    missing = await client.get(f"/things/{UUID(int=0)}", headers=operator)
    assert missing.status_code == 404 and missing.json() == {"type": "about:blank", "title": "Not Found",
                                                              "status": 404, "detail": "no such thing"}


async def test_the_platforms_own_rules_say_why_and_builtin_ones_name_the_rule(client):
    operator = bearer(token(sub="reasons"))
    odd = await client.post("/even", json={"number": 3}, headers=operator)
    assert odd.status_code == 422
    assert odd.json()["errors"] == [{"field": "number", "rule": "value_error",
                                     "reason": "must be even; **************** would be masked"}]
    wrong = await client.post("/even", json={"number": "x"}, headers=operator)
    assert wrong.json()["errors"] == [{"field": "number", "rule": "int_parsing"}]


def test_every_route_must_declare_its_access():
    service = make_service()

    nested = APIRouter()

    @nested.get("/open")
    async def open_route() -> dict:
        return {}

    service.router.include_router(nested)

    with pytest.raises(RuntimeError, match="routes without an access policy"):
        service.app()


def test_the_declared_policy_is_readable_from_the_route():
    app = make_service().app()
    route = next(r for r in api_routes(app.routes) if r.path == "/things")
    assert policy_of(route).roles == {Role.OPERATOR} and policy_of(route).purpose == "p"


def test_scope_per_role():
    scope = HouseholdScope(uuid4(), "jscm", "3672011001", "pendamping-1")

    def p(role, **claims):
        return Principal("pendamping-1" if role == Role.PENDAMPING else "s", frozenset({role}), **claims)

    assert covers(p(Role.PENDAMPING), scope)
    assert not covers(Principal("pendamping-2", frozenset({Role.PENDAMPING})), scope)
    assert covers(p(Role.SUPERVISOR, area="3672"), scope) and not covers(p(Role.SUPERVISOR, area="3602"), scope)
    assert not covers(p(Role.SUPERVISOR), scope)  # no area claim: nothing
    assert covers(p(Role.OPERATOR, programme="jscm"), scope) and not covers(p(Role.OPERATOR, programme="jamsosratu"), scope)
    assert covers(p(Role.AUDITOR), scope)
    assert not covers(p(Role.ADMIN), scope) and not covers(p(Role.AGENCY, agency="dinas-pendidikan"), scope)


def test_claims_read_from_keycloak_shapes():
    principal = principal_from({"sub": "u", "azp": "c", "realm_access": {"roles": ["supervisor", "default-roles-ejsika"]},
                                "area": ["3672"], "programme": ""})
    assert principal.roles == {Role.SUPERVISOR} and principal.area == "3672" and principal.programme is None


def test_rate_limit_refills():
    limit = WriteRateLimit(rate=1000, burst=1)
    assert limit.retry_after("a") == 0
    time.sleep(0.01)
    assert limit.retry_after("a") == 0


def test_field_paths_name_the_place_not_the_value():
    assert field_path(("body", "registrations", 3, "members", 2, "nik")) == "registrations[3].members[2].nik"
    assert field_path(("query", "limit")) == "query.limit"
    assert field_path(("body", "members", 0, "3672014101900001"), "extra_forbidden") == "members[0].(unknown field)"


def test_symmetric_algorithms_are_refused_by_the_settings():
    with pytest.raises(ValueError, match="asymmetric"):
        Settings(auth_algorithms=["HS256"])
