"""The SSRF policy as pure functions: every block of the IANA special-purpose registries is refused (its first,
middle and last address), public neighbours pass, and every IPv6 form carrying an IPv4 address is judged by it."""

from __future__ import annotations

import ipaddress

import pytest

from visual_search.fetching.url_policy import DENIED_IPV4, DENIED_IPV6, denied_reason, embedded_ipv4, is_public_address

ALL_DENIED = DENIED_IPV4 + DENIED_IPV6


def _samples(block):
    return [block.network_address, block.network_address + block.num_addresses // 2, block.broadcast_address]


@pytest.mark.parametrize("block", ALL_DENIED, ids=str)
def test_every_special_purpose_block_is_refused_end_to_end(block):
    for address in _samples(block):
        assert not is_public_address(address), f"{address} in {block} passed"
        assert str(block) in denied_reason(address) or "carries" in denied_reason(address)


@pytest.mark.parametrize(
    "address",
    # The probe's findings, the cloud-metadata and relay ranges, and addresses ipaddress.is_global got wrong.
    [
        "192.0.0.192",
        "192.0.0.9",
        "192.0.0.10",
        "192.88.99.1",
        "192.31.196.1",
        "192.52.193.1",
        "192.175.48.1",
        "198.18.0.1",
        "100.64.0.1",
        "0.1.2.3",
        "255.255.255.255",
        "fec0::1",
        "feff::1",
        "2001:2::1",
        "2001:1::1",
        "2001:3::1",
        "2001:4:112::1",
        "2620:4f:8000::1",
        "3fff::1",
        "5f00::1",
        "100::1",
        "64:ff9b:1::1",
        "4000::1",
        "::8.8.8.8",
        "1::1",
    ],
)
def test_special_purpose_addresses_that_the_old_policy_passed_are_refused(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:10.0.0.1", ["10.0.0.1"]),  # IPv4-mapped
        ("::10.0.0.1", ["10.0.0.1"]),  # IPv4-compatible
        ("64:ff9b::a9fe:a9fe", ["169.254.169.254"]),  # NAT64 well-known prefix
        ("2002:c0a8:0101::1", ["192.168.1.1"]),  # 6to4
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", ["65.54.227.120", "192.0.2.45"]),  # Teredo (RFC 4380 example)
        ("2606:4700:4700::1111", []),
    ],
)
def test_embedded_ipv4_addresses_are_decoded(address, carried):
    assert [str(v4) for v4 in embedded_ipv4(ipaddress.IPv6Address(address))] == carried


@pytest.mark.parametrize(
    "private",
    ["10.0.0.1", "127.0.0.1", "169.254.169.254", "192.0.0.192", "192.168.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1"],
)
def test_every_ipv6_form_embedding_a_private_ipv4_is_refused(private):
    v4 = int(ipaddress.IPv4Address(private))
    forms = {
        "mapped": (0xFFFF << 32) | v4,
        "compatible": v4,
        "nat64": (0x0064FF9B << 96) | v4,
        "6to4": (0x2002 << 112) | (v4 << 80) | 1,
        "teredo client": (0x20010000 << 96) | (int(ipaddress.IPv4Address("8.8.8.8")) << 64) | (v4 ^ 0xFFFFFFFF),
    }
    for name, value in forms.items():
        assert not is_public_address(ipaddress.IPv6Address(value)), f"{name} form of {private} passed"


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "192.0.1.1",
        "192.88.98.255",
        "192.88.100.0",
        "198.17.255.255",
        "198.20.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001::1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_unicast_addresses_and_their_embedding_forms_pass(address):
    assert is_public_address(ipaddress.ip_address(address)), denied_reason(ipaddress.ip_address(address))
