"""The SSRF guard on outgoing webhooks: the rules of `domain.destinations` applied to DNS answers.

Two places check a URL:
- at subscribe time (`Egress.refusal`), to answer 422 at once; a name that does not resolve yet
  is accepted there, since nothing can be contacted through it until it does;
- at delivery time, inside the HTTP client's connection step (`Egress.client`): the host is
  resolved, every address is checked, and the connection is made to one of those very
  addresses. Checking a name and then letting the client resolve it again would leave a window
  for DNS rebinding (a short-TTL answer that is public for the check and private for the
  connection); connecting to the checked address closes it. TLS still verifies the certificate
  against the URL's host name (httpcore's SNI/server_hostname is the origin's host, not the IP),
  and pooled connections stay keyed by that host name.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import ip_address

import httpcore
import httpx

from .domain.destinations import (
    Destination,
    IPAddress,
    addresses_problem,
    destination,
    literal_address,
    url_problem,
)

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# Subscribe time only: a lookup slower than this counts as "does not resolve yet".
_SUBSCRIBE_LOOKUP_TIMEOUT_S = 5.0


class Refused(Exception):
    """The destination is not allowed; `reason` names the rule (never the host or an address)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every A/AAAA address of `host`, in the resolver's order (socket.gaierror if none)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class Egress:
    """Where webhooks may go: public addresses, plus loopback/private ones if `allow_private`."""

    def __init__(self, *, allow_private: bool = False, resolver: Resolver = resolve) -> None:
        self.allow_private = allow_private
        self._resolve = resolver

    async def refusal(self, url: str) -> str | None:
        """Why webhooks may not go to `url`, or None (also when its host does not resolve yet)."""
        if problem := url_problem(url):
            return problem
        target = destination(url)
        try:
            async with asyncio.timeout(_SUBSCRIBE_LOOKUP_TIMEOUT_S):
                addresses = await self.addresses(target)
        except (OSError, TimeoutError, ValueError):  # ValueError: a name IDNA cannot encode
            return None  # checked again, with what DNS says then, before every delivery
        return addresses_problem(addresses, allow_private=self.allow_private)

    async def addresses(self, target: Destination) -> list[IPAddress]:
        if target.literal is not None:
            return [target.literal]
        return await self._resolve(target.host, target.port)

    def check_url(self, url: str) -> None:
        """Raise Refused if `url` is no webhook URL at all, whatever its host resolves to."""
        if problem := url_problem(url):
            raise Refused(problem)

    def client(self, *, limits: httpx.Limits, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        """An HTTP client that connects only to addresses this egress allows (see the module doc)."""
        return httpx.AsyncClient(
            transport=_GuardedTransport(_GuardedBackend(self, httpcore.AnyIOBackend()), limits),
            follow_redirects=False,  # a redirect could point anywhere
            trust_env=False,  # a proxy from the environment would make the connect checks moot
            headers=headers,
        )

    async def connect(
        self, inner: httpcore.AsyncNetworkBackend, host: str, port: int, timeout: float | None,
        local_address: str | None, socket_options: Iterable | None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.addresses(Destination("http", host, port, literal_address(host)))
        except (OSError, ValueError):
            addresses = []
        if not addresses:
            raise httpcore.ConnectError("the host name does not resolve")
        if problem := addresses_problem(addresses, allow_private=self.allow_private):
            raise Refused(problem)
        failure: Exception | None = None
        for address in addresses:  # every one checked above; connect to the first that answers
            try:
                return await inner.connect_tcp(str(address), port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure  # type: ignore[misc]  # addresses is not empty


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, egress: Egress, inner: httpcore.AsyncNetworkBackend) -> None:
        self._egress, self._inner = egress, inner

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return await self._egress.connect(self._inner, host, port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise Refused("webhooks go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with a connection pool whose every connection goes through the guard.

    httpx does not take a network backend itself, so its pool (the `_pool` it builds) is replaced
    by an equivalent one that has the guarded backend.
    """

    def __init__(self, backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
