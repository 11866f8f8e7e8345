"""Who is calling: bearer tokens (JWT) from the OpenID Connect provider, verified with its JWKS.

Signatures, expiry, issuer and audience are PyJWT's work; this module only decides which claims
the platform reads. Roles are Keycloak's realm roles (`realm_access.roles`); the scope a role acts
on comes from claims the provider sets (`area`, `programme`, `agency`), never from the request.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from .problems import Problem


class Role(StrEnum):
    PENDAMPING = "pendamping"  # a caseworker: the households of their caseload
    SUPERVISOR = "supervisor"  # the households of an area (a Kemendagri code prefix)
    OPERATOR = "operator"  # the social office: the households of one programme
    AGENCY = "agency"  # an OPD's system: its own subscriptions, deliveries and answers
    AUDITOR = "auditor"  # reads everything, including the record of processing; writes nothing
    ADMIN = "admin"  # agencies and rule sets; users and clients live in the identity provider


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    client_id: str | None = None
    area: str | None = None
    programme: str | None = None
    agency: str | None = None

    @property
    def role(self) -> Role:
        """The role a request acts in: the most powerful one held, for the record of processing."""
        return next(r for r in Role if r in self.roles) if self.roles else Role.AGENCY


def principal_from(claims: dict[str, Any]) -> Principal:
    granted = set((claims.get("realm_access") or {}).get("roles") or ())
    roles = frozenset(r for r in Role if r.value in granted)
    if not roles:
        raise Problem(403, "the token carries no e-JSiKa role", headers={"WWW-Authenticate": _challenge("insufficient_scope", "no e-JSiKa role")})
    return Principal(
        subject=str(claims["sub"]),
        roles=roles,
        client_id=claims.get("azp") or claims.get("client_id"),
        area=_text(claims.get("area")),
        programme=_text(claims.get("programme")),
        agency=_text(claims.get("agency")),
    )


def _text(value: Any) -> str | None:
    if isinstance(value, list):  # a user attribute mapped as multivalued
        value = value[0] if value else None
    return str(value) if value not in (None, "") else None


def _challenge(error: str, description: str) -> str:
    return f'Bearer realm="ejsika", error="{error}", error_description="{description}"'


def unauthorised(description: str, error: str = "invalid_token") -> Problem:
    return Problem(401, description, headers={"WWW-Authenticate": _challenge(error, description)})


class TokenVerifier:
    """Verifies tokens against the provider's keys, fetched once and again on an unknown `kid`.

    A token verified once is remembered until it expires (a bounded cache, least recently used out):
    a caseworker app or an agency sends the same token with every request for its few minutes of
    life, and checking its signature again each time was the largest single cost of a request. A
    token remembered stays accepted until its `exp` even if its key leaves the key set meanwhile,
    as it would have been had it been checked against the cached key set.
    """

    CACHE_SIZE = 10_000

    def __init__(self, issuer: str, audience: str, jwks_url: str | None, algorithms: list[str], leeway_s: float,
                 refresh_cooldown_s: float = 10.0, clock=time.time) -> None:
        self.issuer, self.audience, self.algorithms, self.leeway_s = issuer, audience, algorithms, leeway_s
        self._clock = clock
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        # PyJWKClient caches the key set and refetches it when a token names a kid it lacks, at most
        # once per cooldown: tokens with made-up kids cannot make every request fetch the key set.
        self._keys = jwt.PyJWKClient(jwks_url or f"{issuer.rstrip('/')}/protocol/openid-connect/certs",
                                     cache_keys=True, lifespan=3600, timeout=5,
                                     cooldown_duration=refresh_cooldown_s)

    async def verify(self, authorization: str | None) -> Principal:
        if not authorization:
            raise unauthorised("a bearer token is required", error="invalid_request")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorised("the Authorization header must be 'Bearer <token>'", error="invalid_request")
        token = token.strip()
        if (known := self._verified.get(token)) is not None:
            principal, expires = known
            if self._clock() <= expires + self.leeway_s:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
            raise unauthorised("the token has expired")
        principal, expires = await self._verify(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthorised("the token is not a JWT") from None
        if header.get("alg") not in self.algorithms:
            raise unauthorised("the token's algorithm is not accepted")
        try:
            # The key set is fetched over HTTP on a cold cache or an unknown kid: off the event loop.
            key = await asyncio.to_thread(self._keys.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            raise Problem(503, "the identity provider's keys cannot be fetched; retry",
                          headers={"Retry-After": "5"}) from None
        except jwt.PyJWTError:
            raise unauthorised("the token is signed with an unknown key") from None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorised("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise unauthorised("the token is not meant for e-JSiKa") from None
        except jwt.InvalidIssuerError:
            raise unauthorised("the token comes from another issuer") from None
        except jwt.PyJWTError:
            raise unauthorised("the token is invalid") from None
        return principal_from(claims), float(claims["exp"])
