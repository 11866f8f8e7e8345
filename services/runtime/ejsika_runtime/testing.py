"""For unit tests of HTTP routes: an identity provider of one local RSA key, in place of the JWKS.

Integration and end-to-end tests use the real Keycloak (the `tokens` fixture); this is a fake key
source for tests of pure request handling, where starting Keycloak would test nothing more.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from .access import Access

ISSUER = "http://idp.test/realms/ejsika"
KEY_ID = "local-1"


class LocalIdentity:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def token(self, *roles: str, key: Any = None, kid: str = KEY_ID, alg: str = "RS256", **claims: Any) -> str:
        """A signed access token of the e-JSiKa realm with these roles; `claims` override or add."""
        now = int(time.time())
        body = {"iss": ISSUER, "aud": ["ejsika"], "sub": "user-1", "iat": now, "exp": now + 300,
                "azp": "ejsika-tests", "realm_access": {"roles": list(roles)}, **claims}
        return jwt.encode(body, key or self.key, algorithm=alg, headers={"kid": kid})

    def headers(self, *roles: str, **claims: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(*roles, **claims)}"}

    def install(self, access: Access) -> Access:
        """Make `access` (built with auth_issuer=ISSUER) trust this key instead of fetching a JWKS."""
        access.verifier._keys = self
        return access

    def get_signing_key_from_jwt(self, encoded: str) -> jwt.PyJWK:
        if jwt.get_unverified_header(encoded).get("kid") != KEY_ID:
            raise jwt.PyJWKClientError("unknown kid")
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return jwt.PyJWK.from_dict({**jwk, "kid": KEY_ID}, algorithm="RS256")
