"""The URL fetcher refuses every SSRF target of issue 6 (before connecting), and fetches allow-listed hosts safely."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import pytest
from loopback_image_host import image_host

from visual_search.core.errors import FetchError, FetchRefusedError, FetchTimeoutError, ImageTooLargeError
from visual_search.fetching.url_fetch import UrlFetcher
from visual_search.fetching.url_policy import is_public_address, parse_ip

PHOTO = (Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "hat.jpg").read_bytes()


@pytest.fixture(scope="module")
def host():
    with image_host(PHOTO) as (port, log):
        yield port, log


def refused(fetcher: UrlFetcher, url: str, log) -> FetchRefusedError:
    seen = len(log.requests)
    with pytest.raises(FetchRefusedError) as caught:
        fetcher.fetch(url)
    assert caught.value.http_status == 400
    assert len(log.requests) == seen, f"{url} reached the host before being refused"
    return caught.value


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "0.0.0.0",
        "[::]",
        "10.0.0.1",
        "10.255.255.254",
        "172.16.0.1",
        "172.31.255.1",
        "192.168.0.1",
        "192.168.255.254",
        "169.254.169.254",
        "[fe80::1]",
        "[fc00::1]",
        "224.0.0.1",
        "[ff02::1]",
        "240.0.0.1",
        "100.64.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::ffff:169.254.169.254]",
        "[::ffff:10.0.0.1]",
        "[::127.0.0.1]",
        "[2002:7f00:1::]",
        "[64:ff9b::a9fe:a9fe]",
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
        "2130706433",
        "017700000001",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.01",
        "127.1",
        "0",
        "3232235521",
        "0xa9.0xfe.0xa9.0xfe",
    ],
)
def test_private_loopback_and_reserved_hosts_are_refused_before_connecting(host, address):
    port, log = host
    error = refused(UrlFetcher(), f"http://{address}:{port}/photo.jpg", log)
    assert error.code == "url_refused"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/photo.jpg",
        "gopher://127.0.0.1:70/_GET",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "//example.com/photo.jpg",
        "http://",
        "http://[::1/",
    ],
)
def test_schemes_other_than_http_and_https_and_malformed_urls_are_refused(host, url):
    refused(UrlFetcher(), url, host[1])


def test_a_name_resolving_to_a_private_address_is_refused():
    fetcher = UrlFetcher(resolver=lambda name, port: ["10.1.2.3"])
    with pytest.raises(FetchRefusedError, match="private or reserved address"):
        fetcher.fetch("http://images.shop.example/photo.jpg")


def test_a_name_with_one_public_and_one_private_answer_is_refused():
    fetcher = UrlFetcher(resolver=lambda name, port: ["93.184.216.34", "::ffff:192.168.1.1"])
    with pytest.raises(FetchRefusedError):
        fetcher.fetch("https://images.shop.example/photo.jpg")


def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(host):
    port, log = host
    calls = []

    def resolver(name, resolver_port):
        calls.append(name)
        return ["127.0.0.1"]  # a name no real DNS knows: the fetch only works if it connects to this address

    fetcher = UrlFetcher(allowlist=[f"photos.intranet.test:{port}"], resolver=resolver)
    fetched = fetcher.fetch(f"http://photos.intranet.test:{port}/photo.jpg")
    assert fetched.data == PHOTO and fetched.content_type == "image/jpeg"
    assert calls == ["photos.intranet.test"]  # resolved once: no second answer can swap the address
    assert log.requests[-1] == ("/photo.jpg", f"photos.intranet.test:{port}")


def test_an_allow_listed_loopback_host_is_fetched(host):
    port, _log = host
    assert UrlFetcher(allowlist=[f"127.0.0.1:{port}"]).fetch(f"http://127.0.0.1:{port}/photo.jpg").data == PHOTO


def test_an_allow_list_entry_for_another_port_does_not_allow_this_one(host):
    port, log = host
    refused(UrlFetcher(allowlist=[f"127.0.0.1:{port + 1}"]), f"http://127.0.0.1:{port}/photo.jpg", log)


def test_a_cidr_allow_list_entry_allows_names_resolving_inside_it(host):
    port, _log = host
    assert UrlFetcher(allowlist=["127.0.0.0/8"]).fetch(f"http://localhost:{port}/photo.jpg").data == PHOTO


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/photo.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/",
        "file:///etc/passwd",
        "http://localhost:{port}/photo.jpg",
    ],
)
def test_a_redirect_to_a_private_address_is_refused_even_from_an_allowed_host(host, target):
    port, log = host
    fetcher = UrlFetcher(allowlist=[f"127.0.0.1:{port}"])
    seen = len(log.requests)
    with pytest.raises(FetchRefusedError):
        fetcher.fetch(f"http://127.0.0.1:{port}/redirect?to={target.format(port=port)}")
    assert len(log.requests) == seen + 1  # the first hop only


def test_a_redirect_within_the_allowed_host_is_followed(host):
    port, _log = host
    fetched = UrlFetcher(allowlist=[f"127.0.0.1:{port}"]).fetch(f"http://127.0.0.1:{port}/redirect?to=/photo.jpg")
    assert fetched.data == PHOTO and fetched.final_url.endswith("/photo.jpg")


def test_more_than_three_redirects_are_refused(host):
    port, log = host
    seen = len(log.requests)
    with pytest.raises(FetchRefusedError, match="redirected more than 3 times"):
        UrlFetcher(allowlist=[f"127.0.0.1:{port}"]).fetch(f"http://127.0.0.1:{port}/loop")
    assert len(log.requests) == seen + 4


def test_a_slow_body_times_out_at_the_total_deadline(host):
    port, _log = host
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError) as caught:
        UrlFetcher(allowlist=[f"127.0.0.1:{port}"], timeout_s=1.0).fetch(f"http://127.0.0.1:{port}/slow.jpg")
    assert caught.value.http_status == 504
    assert time.monotonic() - started < 2.0


def test_an_endless_body_is_cut_at_the_size_cap(host):
    port, _log = host
    with pytest.raises(ImageTooLargeError) as caught:
        UrlFetcher(allowlist=[f"127.0.0.1:{port}"], max_bytes=200_000).fetch(f"http://127.0.0.1:{port}/endless.jpg")
    assert caught.value.http_status == 413


def test_a_declared_length_over_the_cap_is_refused_without_reading(host):
    port, _log = host
    with pytest.raises(ImageTooLargeError):
        UrlFetcher(allowlist=[f"127.0.0.1:{port}"]).fetch(f"http://127.0.0.1:{port}/huge.jpg")


def test_a_page_that_is_not_an_image_is_refused(host):
    port, _log = host
    with pytest.raises(FetchRefusedError) as caught:
        UrlFetcher(allowlist=[f"127.0.0.1:{port}"]).fetch(f"http://127.0.0.1:{port}/page.html")
    assert caught.value.code == "url_not_image" and "text/html" in caught.value.message


@pytest.mark.parametrize("path", ["/missing.jpg", "/boom"])
def test_an_upstream_error_status_is_a_bad_gateway(host, path):
    port, _log = host
    with pytest.raises(FetchError) as caught:
        UrlFetcher(allowlist=[f"127.0.0.1:{port}"]).fetch(f"http://127.0.0.1:{port}{path}")
    assert type(caught.value) is FetchError and caught.value.http_status == 502


def test_a_closed_port_is_a_bad_gateway(host):
    port, _log = host
    with image_host(PHOTO) as (closed_port, _):
        pass  # the server is gone now: its port refuses connections
    with pytest.raises(FetchError) as caught:
        UrlFetcher(allowlist=["127.0.0.0/8"]).fetch(f"http://127.0.0.1:{closed_port}/photo.jpg")
    assert caught.value.http_status == 502


def test_an_unresolvable_name_is_a_bad_gateway():
    def resolver(name, port):
        raise OSError("Name or service not known")

    with pytest.raises(FetchError) as caught:
        UrlFetcher(resolver=resolver).fetch("http://no-such-host.invalid/photo.jpg")
    assert caught.value.http_status == 502


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_public(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("shop.example", None),
    ],
)
def test_ip_spellings_are_normalised(spelling, address):
    parsed = parse_ip(spelling)
    assert (str(parsed) if parsed else None) == address


def test_trickled_headers_time_out_at_the_total_deadline_too():
    """Each byte arrives before a per-read timeout would fire; only a deadline on the whole exchange stops it."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def trickle():
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not stop.wait(0.2):
                try:
                    connection.sendall(b"a")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(FetchTimeoutError) as caught:
            UrlFetcher(allowlist=[f"127.0.0.1:{port}"], timeout_s=1.0).fetch(f"http://127.0.0.1:{port}/photo.jpg")
    finally:
        stop.set()
        listener.close()
    assert caught.value.http_status == 504
    assert time.monotonic() - started < 2.0
