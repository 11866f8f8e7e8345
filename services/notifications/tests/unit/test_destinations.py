"""Where webhooks may go: the address rules of the SSRF guard, one class of address at a time."""

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from ejsika_notifications.domain.destinations import (
    LINK_LOCAL,
    LOOPBACK,
    MULTICAST,
    NON_GLOBAL,
    PRIVATE,
    RESERVED,
    SHARED,
    UNSPECIFIED,
    address_rule,
    addresses_problem,
    destination,
    literal_address,
    reason,
    url_problem,
)


@pytest.mark.parametrize("address, rule", [
    # loopback
    ("127.0.0.1", LOOPBACK), ("127.255.255.254", LOOPBACK), ("::1", LOOPBACK),
    # link-local, the cloud metadata endpoint among them
    ("169.254.169.254", LINK_LOCAL), ("169.254.0.1", LINK_LOCAL), ("fe80::1", LINK_LOCAL),
    ("febf:ffff::1", LINK_LOCAL),
    # private
    ("10.0.0.1", PRIVATE), ("10.255.255.255", PRIVATE), ("172.16.0.1", PRIVATE), ("172.31.255.254", PRIVATE),
    ("192.168.0.1", PRIVATE), ("192.168.255.255", PRIVATE), ("fc00::1", PRIVATE), ("fd12:3456::1", PRIVATE),
    # unspecified
    ("0.0.0.0", UNSPECIFIED), ("::", UNSPECIFIED),
    # multicast (IPv6 global-scope multicast too)
    ("224.0.0.1", MULTICAST), ("239.255.255.250", MULTICAST), ("ff02::1", MULTICAST), ("ff0e::1", MULTICAST),
    # reserved, broadcast
    ("240.0.0.1", RESERVED), ("255.255.255.255", RESERVED),
    # carrier-grade NAT
    ("100.64.0.1", SHARED), ("100.127.255.254", SHARED),
    # IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms of internal IPv4 addresses
    ("::ffff:127.0.0.1", LOOPBACK), ("::ffff:10.0.0.1", PRIVATE), ("::ffff:169.254.169.254", LINK_LOCAL),
    ("::ffff:100.64.0.1", SHARED), ("::ffff:0.0.0.0", UNSPECIFIED), ("::127.0.0.1", LOOPBACK),
    ("64:ff9b::7f00:1", LOOPBACK), ("64:ff9b::a9fe:a9fe", LINK_LOCAL), ("2002:c0a8:0101::1", PRIVATE),
    ("2002:7f00:1::", LOOPBACK),
    ("fec0::1", PRIVATE),  # deprecated site-local
    # not globally routable: documentation, benchmarking, "this network", Teredo
    ("192.0.2.1", NON_GLOBAL), ("198.51.100.1", NON_GLOBAL), ("203.0.113.1", NON_GLOBAL),
    ("198.18.0.1", NON_GLOBAL), ("0.1.2.3", NON_GLOBAL), ("2001:db8::1", NON_GLOBAL), ("2001::1", NON_GLOBAL),
    # deprecated IPv4-compatible form of a public address: no route goes there
    ("::8.8.8.8", RESERVED),
])
def test_internal_addresses_are_refused_by_their_rule(address, rule):
    assert address_rule(ip_address(address)) == rule


@pytest.mark.parametrize("address", [
    "8.8.8.8", "93.184.216.34", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1",
    "192.167.255.255", "11.0.0.1", "2606:4700::1111", "2a00:1450:4001::1",
    "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
])
def test_public_unicast_addresses_are_allowed(address):
    assert address_rule(ip_address(address)) is None


@pytest.mark.parametrize("address, allowed", [
    ("127.0.0.1", True), ("::1", True), ("10.0.0.1", True), ("192.168.1.1", True), ("fd00::1", True),
    ("::ffff:127.0.0.1", True),
    ("169.254.169.254", False), ("fe80::1", False), ("0.0.0.0", False), ("100.64.0.1", False),
    ("224.0.0.1", False), ("240.0.0.1", False), ("192.0.2.1", False),
])
def test_allow_private_lets_loopback_and_private_receivers_through_and_nothing_else(address, allowed):
    assert (addresses_problem([ip_address(address)], allow_private=True) is None) is allowed
    assert addresses_problem([ip_address(address)]) is not None


def test_one_internal_address_among_public_ones_is_enough_to_refuse():
    mixed = [ip_address("93.184.216.34"), ip_address("2606:4700::1"), ip_address("10.0.0.1")]
    assert addresses_problem(mixed) == "url resolves to a private address"
    assert addresses_problem(mixed[:2]) is None


def test_reasons_name_the_rule_with_its_article():
    assert reason(PRIVATE) == "url resolves to a private address"
    assert reason(UNSPECIFIED) == "url resolves to an unspecified address"
    assert reason(SHARED) == "url resolves to a shared (CGNAT) address"


@pytest.mark.parametrize("host, address", [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),  # one 32-bit number
    ("0x7f000001", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),  # hexadecimal, then the last part fills 24 bits
    ("0177.0.0.1", "127.0.0.1"),  # octal
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("0X7F.0.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),  # a trailing dot
    ("017700000001", "127.0.0.1"),
    ("169.254.43518", "169.254.169.254"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("0", "0.0.0.0"),
    ("[::1]", "::1"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ("[::ffff:7f00:1]", "::ffff:7f00:1"),
])
def test_every_notation_of_an_address_is_read_as_that_address(host, address):
    assert literal_address(host) == ip_address(address)


@pytest.mark.parametrize("host", [
    "opd.example", "localhost", "127.0.0.1.nip.io", "0x7f.example", "1.2.3.4.5", "256.0.0.1", "1.16777216",
    "08.0.0.1", "", "::zz",
])
def test_names_and_impossible_numbers_are_not_addresses(host):
    assert literal_address(host) is None


@pytest.mark.parametrize("url, problem", [
    ("ftp://opd.example/x", "url scheme must be http or https"),
    ("file:///etc/passwd", "url scheme must be http or https"),
    ("gopher://127.0.0.1:6379/_INFO", "url scheme must be http or https"),
    ("javascript:alert(1)", "url scheme must be http or https"),
    ("http:///hooks", "url has no host"),
    ("http://opd.example:99999/", "url is not a valid URL"),
])
def test_urls_that_are_no_webhook_destination_whatever_dns_says(url, problem):
    assert url_problem(url) == problem


def test_the_destination_is_the_host_and_port_the_client_connects_to():
    assert url_problem("HTTPS://OPD.example/hooks") is None
    target = destination("HTTPS://OPD.example/hooks")
    assert (target.scheme, target.host, target.port, target.literal) == ("https", "opd.example", 443, None)
    target = destination("http://user@[::ffff:127.0.0.1]:8009/x")
    assert (target.host, target.port, target.literal) == ("::ffff:127.0.0.1", 8009, IPv6Address("::ffff:7f00:1"))
    assert destination("http://0x7f.1/").literal == IPv4Address("127.0.0.1")
