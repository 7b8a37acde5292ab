"""Which addresses a URL fetch may reach: public unicast only, unless explicitly allow-listed.

Pure functions over `ipaddress`; url_fetch.py applies them to every hop before it connects.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable, Iterable, Sequence
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# IPv6 prefixes that carry an IPv4 address in their low 32 bits (NAT64 well-known prefix, IPv4-compatible ::/96).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses, by getaddrinfo (which also reads inet_aton spellings such as 0x7f.1 or 2130706433)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses, looking inside IPv6 forms that embed an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
        embedded = address.sixtofour
        if embedded is None and (address in _NAT64 or address in _IPV4_COMPATIBLE):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.teredo:
            embedded = address.teredo[1]
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


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
