"""Access tokens from the OpenID Connect provider's token endpoint, for the tests and the demo.

A client of its own (client credentials), or a person through the test-only client `ejsika-tests`
(the resource owner password grant, which no real app of the platform uses).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import jwt


class TokenError(RuntimeError):
    """The provider refused to issue a token (or could not be reached)."""


def token_endpoint(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/protocol/openid-connect/token"


def fetch_token(
    issuer: str,
    client_id: str,
    client_secret: str,
    username: str | None = None,
    password: str | None = None,
    *,
    timeout: float = 30.0,
) -> str:
    """An access token: the client's own (client_credentials) without `username`, else the person's."""
    form = {"client_id": client_id, "client_secret": client_secret}
    if username is None:
        form["grant_type"] = "client_credentials"
    else:
        form |= {"grant_type": "password", "username": username, "password": password or ""}
    try:
        response = httpx.post(token_endpoint(issuer), data=form, timeout=timeout)
    except httpx.HTTPError as error:
        raise TokenError(f"token endpoint of {issuer} unreachable: {error}") from error
    if response.status_code != 200:
        # The provider's error code and description; never the request, which holds the secrets.
        try:
            body = response.json()
            reason = f"{body.get('error')}: {body.get('error_description')}"
        except ValueError:
            reason = response.text[:200]
        who = f"user {username!r}" if username is not None else f"client {client_id!r}"
        raise TokenError(f"no token for {who} from {issuer} ({response.status_code} {reason})")
    return response.json()["access_token"]


class Bearer(httpx.Auth):
    """httpx authentication with a token from `token()`, asked again for every request (cache there)."""

    def __init__(self, token: Callable[[], str]) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request):
        request.headers["authorization"] = f"Bearer {self.token()}"
        yield request


class RenewingToken:
    """A client's (or, with `username`, a person's) token, fetched again a minute before it expires."""

    def __init__(self, issuer: str, client_id: str, client_secret: str,
                 username: str | None = None, password: str | None = None) -> None:
        self._grant = (issuer, client_id, client_secret, username, password)
        self._token, self._expires = "", 0.0
        # One fetch at a time: Keycloak's brute-force detection counts logins of one user less than
        # a second apart as failures, so parallel requests would lock the user out.
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            return self._current()

    def _current(self) -> str:
        if time.monotonic() > self._expires - 60:
            self._token = fetch_token(*self._grant)
            # The lifetime is read from the token without verifying it: only to know when to renew.
            claims = jwt.decode(self._token, options={"verify_signature": False})
            self._expires = time.monotonic() + claims["exp"] - claims["iat"]
        return self._token
