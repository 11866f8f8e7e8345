"""Where a webhook may be sent: http(s) URLs whose host is a public address (no I/O here).

A subscription names a URL; the service POSTs to it. Left unchecked, an operator (or whoever
holds an operator's token) could make the service POST to itself, to the database, to a cloud
metadata endpoint (169.254.169.254) or to anything else on the internal network: server-side
request forgery. So the URL's host must resolve only to globally routable unicast addresses.
These are the rules; `ejsika_notifications.egress` applies them to what DNS answers.

The reasons name the rule that refused the URL and never repeat the URL, its host or an address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address

SCHEMES = {"http": 80, "https": 443}

# The rules, each named in the reason given when it refuses an address.
UNSPECIFIED = "unspecified"
LOOPBACK = "loopback"
LINK_LOCAL = "link-local"
MULTICAST = "multicast"
SHARED = "shared (CGNAT)"
PRIVATE = "private"
RESERVED = "reserved"
NON_GLOBAL = "non-global"
# What EJSIKA_WEBHOOKS_ALLOW_PRIVATE lets through, for local receivers (the demo, tests). Never
# link-local (the cloud metadata endpoint lives there), unspecified (0.0.0.0 reaches this host) etc.
RELAXED_BY_ALLOW_PRIVATE = frozenset({LOOPBACK, PRIVATE})

_SHARED_V4 = IPv4Network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_PRIVATE_V4 = (IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16"))
_PRIVATE_V6 = IPv6Network("fc00::/7")  # unique local addresses
_NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are the IPv4 address reached
_IPV4_COMPATIBLE = IPv6Network("::/96")  # deprecated ::a.b.c.d


@dataclass(frozen=True)
class Destination:
    """The parts of a webhook URL that decide where a connection goes."""

    scheme: str
    host: str  # as the HTTP client will look it up: lower case, IPv6 without brackets
    port: int
    literal: IPAddress | None  # the host is an address, in any notation a resolver accepts


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook destination whatever its host resolves to, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on an invalid port
    except ValueError:
        return "url is not a valid URL"
    if parts.scheme.lower() not in SCHEMES:
        return "url scheme must be http or https"
    if not parts.hostname:
        return "url has no host"
    return None


def destination(url: str) -> Destination:
    """The destination of a URL that `url_problem` accepts."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    return Destination(scheme, host, parts.port or SCHEMES[scheme], literal_address(host))


_IPV4_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def literal_address(host: str) -> IPAddress | None:
    """The address `host` denotes when it is one, or None for a name.

    Besides the usual forms this reads every IPv4 notation that resolvers (inet_aton) and
    browsers (WHATWG URL) accept: `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1` are all 127.0.0.1.
    """
    host = host.strip("[]").lower()
    if ":" in host:
        try:
            return IPv6Address(host)
        except ValueError:
            return None
    parts = host.split(".")
    if parts and parts[-1] == "":  # one trailing dot is allowed: "127.0.0.1."
        parts.pop()
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.match(p) for p in parts):
        return None
    try:
        numbers = [_ipv4_number(p) for p in parts]
    except ValueError:
        return None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return IPv4Address(value)


def _ipv4_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)  # ValueError for 08, 09: not a number, so a name
    return int(part)


def address_rule(address: IPAddress) -> str | None:
    """The rule refusing `address` as a webhook destination, or None if it is public unicast."""
    if isinstance(address, IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            if (rule := address_rule(embedded)) is not None:
                return rule
            if address.ipv4_mapped is not None or address in _NAT64:
                return None  # the connection goes to the (public) IPv4 address
    if address.is_unspecified:
        return UNSPECIFIED
    if address.is_loopback:
        return LOOPBACK
    if address.is_link_local:
        return LINK_LOCAL
    if address.is_multicast:
        return MULTICAST
    if address in _SHARED_V4:
        return SHARED
    if any(address in network for network in _PRIVATE_V4) or address in _PRIVATE_V6:
        return PRIVATE
    if isinstance(address, IPv6Address) and address.is_site_local:  # fec0::/10, private before fc00::/7
        return PRIVATE
    if address.is_reserved:
        return RESERVED
    if not address.is_global:
        return NON_GLOBAL  # documentation, benchmarking, 0.0.0.0/8, Teredo, site-local, ...
    return None


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address a connection to `address` would reach: IPv4-mapped (::ffff:a.b.c.d),
    NAT64 (64:ff9b::a.b.c.d), IPv4-compatible (::a.b.c.d) or 6to4 (2002:AABB:CCDD::)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def reason(rule: str) -> str:
    article = "an" if rule[0] in "aeiou" else "a"
    return f"url resolves to {article} {rule} address"


def addresses_problem(addresses: Iterable[IPAddress], *, allow_private: bool = False) -> str | None:
    """Why these addresses (all of one host) may not be contacted, or None. One bad address is
    enough: a resolver may hand out any of them, and an attacker chooses the order."""
    for address in addresses:
        rule = address_rule(address)
        if rule is not None and not (allow_private and rule in RELAXED_BY_ALLOW_PRIVATE):
            return reason(rule)
    return None
