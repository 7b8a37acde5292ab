"""No URL, first or redirected, can make the fetcher raise anything but its own errors: a malformed URL written by
the caller is a 400 url_malformed, a malformed Location from the image host a 502 bad_redirect."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopback_image_host import image_host

from visual_search.core.errors import FetchError, FetchRefusedError, VisualSearchError
from visual_search.fetching.url_fetch import UrlFetcher

PHOTO = (Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "hat.jpg").read_bytes()
MALFORMED_LOCATIONS = [
    "http://[::1",
    "http://[zz]/",
    "//[",
    "http://[::1]:99999/",
    "http://host:port/",
    "http://h/a b",
    "http://h/\x01",
    "https://[v1.x]/",
]


@pytest.fixture(scope="module")
def host():
    with image_host(PHOTO) as (port, log):
        yield port, log


@pytest.mark.parametrize("location", MALFORMED_LOCATIONS)
def test_a_malformed_redirect_target_from_a_real_host_is_a_bad_gateway(host, location):
    port, _log = host
    fetcher = UrlFetcher(allowlist=[f"127.0.0.1:{port}"])
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(f"http://127.0.0.1:{port}/redirect?to={quote(location, safe='')}")
    assert (caught.value.http_status, caught.value.code) == (502, "bad_redirect"), caught.value.message


@pytest.mark.parametrize("url", MALFORMED_LOCATIONS)
def test_the_same_urls_written_by_the_caller_are_refused_as_malformed(url):
    with pytest.raises(FetchRefusedError) as caught:
        UrlFetcher(resolver=_no_dns).fetch(url)
    assert caught.value.http_status == 400 and caught.value.code in ("url_malformed", "url_refused")


def _no_dns(host, port):
    raise OSError("no DNS in this test")


class _RedirectingForever(UrlFetcher):
    """Answers every hop with a 302 to the given Location, without any network: the policy and parsing run for real."""

    def __init__(self, location: str):
        super().__init__(resolver=lambda host, port: ["8.8.8.8"], max_redirects=2)
        self.location = location

    def _get(self, target, deadline):
        return 302, {"location": self.location}, b""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda scheme, rest: scheme + rest,
            st.sampled_from(["http://", "https://", "//", "http://[", "/"]),
            st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
        ),
    )
)
def test_any_redirect_target_gives_one_of_the_fetchers_own_errors(location):
    with pytest.raises(VisualSearchError) as caught:
        _RedirectingForever(location).fetch("http://images.shop.example/photo.jpg")
    assert isinstance(caught.value, FetchError) and caught.value.http_status in (400, 502)
