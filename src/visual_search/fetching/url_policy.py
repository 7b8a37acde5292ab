"""Which addresses a URL fetch may reach: public unicast only, unless explicitly allow-listed.

Pure functions over `ipaddress`; url_fetch.py applies them to every hop before it connects. The rules do not use
`ipaddress.is_global` and friends, whose answers change between Python versions and miss special-purpose ranges:
they are explicit deny lists copied from the IANA IPv4 and IPv6 Special-Purpose Address Registries (plus
multicast and the deprecated site-local block), every block denied whatever its "globally reachable" column says
(no image host lives on an anycast relay or a benchmarking range). IPv6 is further limited to global unicast
(2000::/3). IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, Teredo, NAT64) are decoded, and the
embedded address must pass too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# IANA IPv4 Special-Purpose Address Registry (iana-ipv4-special-registry, 2024 edition), and multicast.
DENIED_IPV4 = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network" (RFC 791); 0.0.0.0/32 "this host" inside it
        "10.0.0.0/8",  # private-use (RFC 1918)
        "100.64.0.0/10",  # shared address space, carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",  # loopback (RFC 1122)
        "169.254.0.0/16",  # link-local, cloud metadata at 169.254.169.254 (RFC 3927)
        "172.16.0.0/12",  # private-use (RFC 1918)
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890), incl. DS-Lite, PCP/TURN anycast, NAT64 discovery
        "192.0.2.0/24",  # documentation TEST-NET-1 (RFC 5737)
        "192.31.196.0/24",  # AS112-v4 (RFC 7535)
        "192.52.193.0/24",  # AMT (RFC 7450)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast (RFC 7526)
        "192.168.0.0/16",  # private-use (RFC 1918)
        "192.175.48.0/24",  # direct delegation AS112 service (RFC 7534)
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "198.51.100.0/24",  # documentation TEST-NET-2 (RFC 5737)
        "203.0.113.0/24",  # documentation TEST-NET-3 (RFC 5737)
        "224.0.0.0/4",  # multicast (RFC 5771)
        "240.0.0.0/4",  # reserved (RFC 1112), with the limited broadcast 255.255.255.255/32
    )
)

# IANA IPv6 Special-Purpose Address Registry (iana-ipv6-special-registry, 2024 edition), multicast and the
# deprecated site-local block. The IPv4-carrying blocks that may be public (mapped, NAT64, 6to4) are not here:
# their embedded address decides.
DENIED_IPV6 = tuple(
    ipaddress.IPv6Network(block)
    for block in (
        "::/96",  # unspecified ::/128, loopback ::1/128 and the deprecated IPv4-compatible form (RFC 4291)
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation (RFC 8215)
        "100::/64",  # discard-only (RFC 6666)
        "100:0:0:1::/64",  # dummy IPv6 prefix (RFC 9780)
        "2001::/23",  # IETF protocol assignments (RFC 2928): Teredo 2001::/32, benchmarking, ORCHID, AMT, AS112
        "2001:db8::/32",  # documentation (RFC 3849)
        "2620:4f:8000::/48",  # direct delegation AS112 service (RFC 7534)
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # segment routing SIDs (RFC 9602)
        "fc00::/7",  # unique local (RFC 4193)
        "fe80::/10",  # link-local (RFC 4291)
        "fec0::/10",  # deprecated site-local (RFC 3879)
        "ff00::/8",  # multicast (RFC 4291)
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix (RFC 6052)
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # RFC 3056
_TEREDO = ipaddress.IPv6Network("2001::/32")  # RFC 4380


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses, by getaddrinfo (which also reads inet_aton spellings such as 0x7f.1 or 2130706433)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, compatible and NAT64 in the low 32 bits; 6to4 in bits
    16-48; Teredo the server (bits 32-64) and the client (the low 32 bits, inverted)."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_MAPPED or address in _IPV4_COMPATIBLE or address in _NAT64:
        return [low32]
    if address in _SIX_TO_FOUR:
        return [ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)]
    if address in _TEREDO:
        server = ipaddress.IPv4Address((int(address) >> 64) & 0xFFFFFFFF)
        return [server, ipaddress.IPv4Address(int(low32) ^ 0xFFFFFFFF)]
    return []


def denied_reason(address: IPAddress) -> str | None:
    """Why a fetch may not reach `address` (the special-purpose block it is in), or None when it is public."""
    if isinstance(address, ipaddress.IPv4Address):
        block4 = next((block for block in DENIED_IPV4 if address in block), None)
        return f"in {block4}" if block4 else None
    carried = embedded_ipv4(address)
    if address in _IPV4_MAPPED or address in _NAT64:
        # These reach the embedded IPv4 host itself (a dual-stack socket, a NAT64 gateway): it alone decides.
        reason = denied_reason(carried[0])
        return f"carries {carried[0]}, {reason}" if reason else None
    block = next((block for block in DENIED_IPV6 if address in block), None)
    if block is not None:
        return f"in {block}"
    if address not in _GLOBAL_UNICAST_V6:
        return f"outside global unicast {_GLOBAL_UNICAST_V6}"
    for inner in carried:
        reason = denied_reason(inner)
        if reason:
            return f"carries {inner}, {reason}"
    return None


def is_public_address(address: IPAddress) -> bool:
    """True only for public unicast addresses (see the module's docstring for the rules)."""
    return denied_reason(address) is None


def parse_ip(text: str) -> IPAddress | None:
    """An IP address from any spelling a URL host may use ([::1], 127.1, 0x7f000001, 017700000001), else None."""
    text = text.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        # inet_aton accepts the legacy decimal, octal and hex forms that browsers and libc also accept.
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


class Allowlist:
    """Entries "host", "host:port" (the URL's host as written, or its normalised IP) and CIDRs (resolved addresses)."""

    def __init__(self, entries: Iterable[str]):
        self.hosts: set[tuple[str, int | None]] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in (e.strip().lower() for e in entries if e and e.strip()):
            if "/" in entry:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            parts = urlsplit("//" + entry)
            host = (parts.hostname or "").rstrip(".")
            literal = parse_ip(host)
            self.hosts.add((str(literal) if literal else host, parts.port))

    def allows_host(self, host: str, port: int) -> bool:
        host = host.lower()
        return (host, None) in self.hosts or (host, port) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks if network.version == address.version)
