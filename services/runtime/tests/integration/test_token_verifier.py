"""The runtime's token checks against the real Keycloak: its keys, its claims, a key rotation."""

from __future__ import annotations

import httpx
import jwt
import pytest

from ejsika_runtime.auth import Role, TokenVerifier
from ejsika_runtime.problems import Problem

pytestmark = pytest.mark.infra


def verifier(issuer: str) -> TokenVerifier:
    # no cooldown between key-set fetches, so a test need not wait one out after the first fetch
    return TokenVerifier(issuer, "ejsika", None, ["RS256"], 30, refresh_cooldown_s=0)


async def test_real_tokens_give_the_role_and_scope_of_their_holder(auth_issuer, tokens):
    check = verifier(auth_issuer)
    supervisor = await check.verify(f"Bearer {tokens.for_user('supervisor-cilegon')}")
    assert supervisor.roles == {Role.SUPERVISOR} and supervisor.area == "3672"
    agency = await check.verify(f"Bearer {tokens.for_client('agency-dinas-kesehatan')}")
    assert agency.roles == {Role.AGENCY} and agency.agency == "dinas-kesehatan"

    token = tokens.for_user("operator-jscm")
    header, body, signature = token.split(".")
    forged = ".".join([header, body, signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")])
    with pytest.raises(Problem) as refused:
        await check.verify(f"Bearer {forged}")
    assert refused.value.status == 401
    with pytest.raises(Problem) as other_issuer:
        await verifier(auth_issuer.replace("/realms/ejsika", "/realms/master")).verify(f"Bearer {token}")
    assert other_issuer.value.status == 401


async def test_a_new_signing_key_is_fetched_when_a_token_names_it(infrastructure, auth_issuer, tokens):
    check = verifier(auth_issuer)
    await check.verify(f"Bearer {tokens.for_user('auditor-demo')}")  # the key set is now cached
    old_kid = jwt.get_unverified_header(tokens.for_user("auditor-demo"))["kid"]

    keycloak = infrastructure.keycloak
    admin = keycloak.credentials["admin"]
    async with httpx.AsyncClient(base_url=keycloak.url, timeout=30) as http:
        grant = await http.post("/realms/master/protocol/openid-connect/token", data={
            "grant_type": "password", "client_id": "admin-cli",
            "username": admin["username"], "password": admin["password"]})
        headers = {"authorization": f"Bearer {grant.json()['access_token']}"}
        realm = (await http.get("/admin/realms/ejsika", headers=headers)).json()
        added = await http.post("/admin/realms/ejsika/components", headers=headers, json={
            "name": "rotated-in-test", "providerId": "rsa-generated", "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"],
            "config": {"priority": ["1000"], "keySize": ["2048"], "active": ["true"], "enabled": ["true"],
                       "algorithm": ["RS256"]}})
        assert added.status_code == 201, added.text
        # A fresh token is signed with the new, higher-priority key.
        fresh = await http.post("/realms/ejsika/protocol/openid-connect/token", data={
            "grant_type": "client_credentials", "client_id": "ejsika-admin-cli",
            "client_secret": keycloak.credentials["clients"]["ejsika-admin-cli"]})
    token = fresh.json()["access_token"]
    assert jwt.get_unverified_header(token)["kid"] != old_kid
    principal = await check.verify(f"Bearer {token}")
    assert principal.roles == {Role.ADMIN}
