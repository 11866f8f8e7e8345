"""For unit tests of HTTP routes: an identity provider of one local RSA key, in place of the JWKS.

Integration and end-to-end tests use the real Keycloak (the `tokens` fixture); this is a fake key
source for tests of pure request handling, where starting Keycloak would test nothing more.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
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


def eventually(check: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
    """Poll `check` until it returns a truthy value; fail with its last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout}s; last value: {value!r}")
        time.sleep(interval)


def promtool(*args: str, input: str | bytes) -> subprocess.CompletedProcess:
    """Run Prometheus' `promtool` (on PATH, or where `go install` puts it) on `input`.

    Tests of metrics run it rather than a Python re-implementation of its checks: it is the tool
    operators and CI judge the exposition with. Install it with
    `go install github.com/prometheus/prometheus/cmd/promtool@latest`.
    """
    found = shutil.which("promtool") or shutil.which("promtool", path=str(Path.home() / "go" / "bin"))
    if found is None:
        raise AssertionError("promtool is not installed: go install github.com/prometheus/prometheus/cmd/promtool@latest")
    return subprocess.run([found, *args], input=input, capture_output=True, text=isinstance(input, str))
