"""The realm `ejsika` of deploy/keycloak/ejsika-realm.json on the session's Keycloak: real tokens.

The tokens are decoded without verifying them, only to read the claims the platform relies on
(the services verify them; that is tested where they do).
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from ejsika_runtime.auth_tokens import TokenError, fetch_token, token_endpoint

pytestmark = pytest.mark.infra

# username: (realm role, {claim: value}) as the realm file assigns them
PEOPLE = {
    "pendamping-demo": ("pendamping", {}),
    "pendamping-other": ("pendamping", {}),
    "supervisor-cilegon": ("supervisor", {"area": "3672"}),
    "supervisor-lebak": ("supervisor", {"area": "3602"}),
    "operator-jamsosratu": ("operator", {"programme": "jamsosratu"}),
    "operator-jscm": ("operator", {"programme": "jscm"}),
    "auditor-demo": ("auditor", {}),
    "admin-demo": ("admin", {}),
}
MACHINES = {
    "caseworker-app": ("pendamping", {}),
    "agency-dinas-pendidikan": ("agency", {"agency": "dinas-pendidikan"}),
    "agency-dinas-kesehatan": ("agency", {"agency": "dinas-kesehatan"}),
    "ejsika-admin-cli": ("admin", {}),
}
ROLES = {"pendamping", "supervisor", "operator", "agency", "auditor", "admin"}
SCOPE_CLAIMS = ("area", "programme", "agency")


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def audiences(claims: dict) -> list[str]:
    aud = claims["aud"]
    return [aud] if isinstance(aud, str) else aud


def assert_claims(claims: dict, issuer: str, role: str, scope: dict) -> None:
    assert claims["iss"] == issuer
    assert "ejsika" in audiences(claims)
    assert claims["sub"]
    assert claims["exp"] - claims["iat"] == 900
    assert set(claims["realm_access"]["roles"]) & ROLES == {role}
    for name in SCOPE_CLAIMS:
        assert claims.get(name) == scope.get(name), name  # string-valued, and absent when not granted


@pytest.mark.parametrize("username", PEOPLE)
def test_each_person_gets_a_token_of_their_role_and_scope(tokens, auth_issuer, username):
    role, scope = PEOPLE[username]
    claims = claims_of(tokens.for_user(username))
    assert_claims(claims, auth_issuer, role, scope)
    assert claims["preferred_username"] == username
    assert claims["azp"] == "ejsika-tests"


@pytest.mark.parametrize("client_id", MACHINES)
def test_each_machine_client_gets_a_token_of_its_role(tokens, auth_issuer, client_id):
    role, scope = MACHINES[client_id]
    claims = claims_of(tokens.for_client(client_id))
    assert_claims(claims, auth_issuer, role, scope)
    assert claims["azp"] == client_id


def test_issuer_is_the_one_the_provider_announces(auth_issuer):
    discovery = httpx.get(f"{auth_issuer}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == auth_issuer
    assert discovery["token_endpoint"] == token_endpoint(auth_issuer)
    keys = httpx.get(discovery["jwks_uri"], timeout=10).json()["keys"]
    assert any(key["alg"] == "RS256" and key["use"] == "sig" for key in keys)


def test_wrong_password_is_refused(tokens, auth_issuer):
    secret = tokens.credentials["clients"]["ejsika-tests"]
    with pytest.raises(TokenError, match="invalid_grant"):
        fetch_token(auth_issuer, "ejsika-tests", secret, "auditor-demo", "not-the-password")


def test_wrong_client_secret_is_refused(auth_issuer):
    with pytest.raises(TokenError, match="unauthorized_client|invalid_client"):
        fetch_token(auth_issuer, "agency-dinas-kesehatan", "not-the-secret")


def test_embedded_keycloak_has_its_console_admin_and_private_credentials(infrastructure):
    keycloak = infrastructure.keycloak
    if keycloak is None:
        pytest.skip("EJSIKA_AUTH_ISSUER names an external provider: no embedded Keycloak to check")
    assert keycloak.credentials_file.stat().st_mode & 0o077 == 0
    admin = keycloak.credentials["admin"]
    token = fetch_token(f"{keycloak.url}/realms/master", "admin-cli", "", admin["username"], admin["password"])
    realm = httpx.get(f"{keycloak.url}/admin/realms/ejsika", headers={"authorization": f"Bearer {token}"},
                      timeout=10).json()
    assert realm["realm"] == "ejsika"


def test_people_cannot_use_a_machine_client_nor_machines_the_people_client(tokens, auth_issuer):
    secrets = tokens.credentials
    person, password = "operator-jscm", secrets["users"]["operator-jscm"]
    with pytest.raises(TokenError):  # no password grant on a machine client
        fetch_token(auth_issuer, "agency-dinas-pendidikan", secrets["clients"]["agency-dinas-pendidikan"],
                    person, password)
    with pytest.raises(TokenError):  # no service account on the people's client
        fetch_token(auth_issuer, "ejsika-tests", secrets["clients"]["ejsika-tests"])
