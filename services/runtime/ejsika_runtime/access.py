"""Every route is born protected: it declares the roles it serves and the purpose of its processing.

`Access.allow(...)` is the FastAPI dependency a route takes. It verifies the token, narrows the
caller to the roles the route serves (so an auditor who is also a pendamping writes only as a
pendamping), applies the write rate limit and hands the route a `Caller` that checks households
against the caller's scope and writes the record of processing.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from . import processing, scopes
from .auth import Principal, Role, TokenVerifier
from .logs import correlation_id
from .problems import Problem
from .settings import Settings

_READS = frozenset({"GET", "HEAD"})
# Declares the scheme in the OpenAPI document; the header itself is read by TokenVerifier, so
# that each failure gets its own reason.
_bearer = HTTPBearer(auto_error=False, description="An access token of the e-JSiKa realm")


@dataclass(frozen=True)
class Policy:
    roles: frozenset[Role]
    purpose: str
    # Roles answered 404 rather than 403: an agency must not learn that a household exists.
    hidden_from: frozenset[Role]


@dataclass(frozen=True)
class Caller:
    principal: Principal
    policy: Policy
    channel: str  # "GET /households/{household_id}": the endpoint, for the record

    @property
    def processor(self) -> processing.Processor:
        p = self.principal
        return processing.Processor(p.subject, p.role.value, p.client_id)

    def covers(self, scope: scopes.HouseholdScope) -> bool:
        return scopes.covers(self.principal, scope)

    async def household(self, conn: asyncpg.Connection | asyncpg.Pool, household_id: UUID) -> scopes.HouseholdScope:
        """The household's scope if the caller may act on it; 404 otherwise, as if it did not exist."""
        scope = await scopes.find(conn, household_id)
        if scope is None or not self.covers(scope):
            raise Problem(404, "no such household")
        return scope

    async def record(
        self, conn: asyncpg.Connection | asyncpg.Pool, action: processing.Action,
        household_ids: Iterable[UUID], fields: Sequence[str],
    ) -> None:
        cid = correlation_id.get()
        await processing.record(conn, self.processor, action, household_ids, fields, self.channel,
                                self.policy.purpose, UUID(cid) if cid else None)

    def recording(self, action: processing.Action, fields: Sequence[str], households: str,
                  first: int) -> tuple[str, list]:
        """`record` as a statement to put in the write's own SQL (a part of its WITH), so that a write and
        its record take one round trip: the INSERT for the households `households` names (an SQL query of
        one uuid column, e.g. the RETURNING of the write), its parameters $first..$first+7 and their values."""
        cid = correlation_id.get()
        return processing.insert_sql(households, first), processing.values(
            self.processor, action, fields, self.channel, self.policy.purpose, UUID(cid) if cid else None)


class WriteRateLimit:
    """A token bucket per caller, in this process: `rate` writes a second, bursts of `burst`.

    Kept in memory on purpose: it protects one replica from one client's loop, it is not a quota.
    """

    def __init__(self, rate: float, burst: int, max_callers: int = 10_000) -> None:
        self.rate, self.burst, self.max_callers = rate, burst, max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def retry_after(self, caller: str) -> int:
        """0 if the caller may write now (and takes a token), else the seconds to wait."""
        now = time.monotonic()
        tokens, at = self._buckets.pop(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        wait = 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[caller] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        return wait


class Access:
    def __init__(self, settings: Settings) -> None:
        self.verifier = TokenVerifier(settings.auth_issuer, settings.auth_audience, settings.auth_jwks_url,
                                      settings.auth_algorithms, settings.auth_leeway_s,
                                      settings.auth_keys_refresh_cooldown_s)
        self.limit = WriteRateLimit(settings.write_rate_per_s, settings.write_burst)

    def allow(self, *roles: Role, purpose: str, hidden_from: Iterable[Role] = (Role.AGENCY,)) -> Any:
        """The dependency of a route serving `roles` for `purpose`."""
        if not roles or not purpose:
            raise ValueError("a route must name the roles it serves and the purpose of its processing")
        policy = Policy(frozenset(roles), purpose, frozenset(hidden_from) - set(roles))

        async def caller(request: Request, _: Any = Depends(_bearer)) -> Caller:
            principal = await self.verifier.verify(request.headers.get("authorization"))
            allowed = principal.roles & policy.roles
            if not allowed:
                if principal.roles & policy.hidden_from:
                    raise Problem(404, "not found")
                held = ", ".join(sorted(principal.roles))
                raise Problem(403, f"role {held} may not do this; it is for {', '.join(sorted(policy.roles))}")
            if request.method not in _READS and (wait := self.limit.retry_after(principal.subject)):
                raise Problem(429, "too many writes from this client", headers={"Retry-After": str(wait)})
            # Per request: the route's path as declared (request.url is built only without one), and the
            # principal copied only when the route narrows its roles.
            route = request.scope.get("route")
            path = route.path_format if hasattr(route, "path_format") else request.url.path
            return Caller(principal if allowed == principal.roles else replace(principal, roles=allowed), policy,
                          f"{request.method} {path}")

        caller.policy = policy  # read by the declaration check and the role matrix test
        return Depends(caller)


def policy_of(route: Any) -> Policy | None:
    """The access policy a route declared through `Access.allow`, if any."""
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if (policy := getattr(dependant.call, "policy", None)) is not None:
            return policy
        stack.extend(dependant.dependencies)
    return None


def api_routes(routes: Iterable[Any]) -> Iterable[Any]:
    """Every route with an endpoint, through included routers (FastAPI keeps those nested)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)
        elif hasattr(route, "dependant"):
            yield route


def unguarded(routes: Iterable[Any]) -> list[str]:
    return [f"{sorted(r.methods)} {r.path}" for r in api_routes(routes) if policy_of(r) is None]
