"""Issue 22, class 6: one client cannot exhaust the local server. Its expensive routes (search, duplicates,
writes) are limited per client address with a token bucket; past the burst the answer is 429 `rate_limited` with
`Retry-After`, other clients and cheap routes are not affected, and the default is off on a loopback bind (the
test suites' many searches from 127.0.0.1 never trip it) and on for any other bind."""

from __future__ import annotations

import pytest
from corpus import known_key
from fastapi.testclient import TestClient

from visual_search.core.settings import Settings
from visual_search.server.app import create_app
from visual_search.server.rate_limit import DEFAULT_PER_S, TokenBuckets, is_expensive, rate_limit_for_host

pytestmark = pytest.mark.timeout(120)


def served(hostile_index_dir, hostile_search_service, tmp_path, client=("203.0.113.7", 50000), **limits):
    settings = Settings(index=str(hostile_index_dir), **limits)
    app = create_app(settings, search_service=hostile_search_service, frontend_dir=tmp_path / "no-ui")
    return TestClient(app, raise_server_exceptions=False, client=client)


def test_past_the_burst_a_client_gets_429_with_retry_after_and_cheap_routes_still_answer(
    hostile_index_dir, hostile_search_service, tmp_path
):
    with served(hostile_index_dir, hostile_search_service, tmp_path, rate_limit_per_s=0.5, rate_limit_burst=3) as c:
        statuses = [c.post("/search", json={"key": known_key(), "k": 3}).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        refused = c.post("/search", json={"key": known_key()})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert c.get("/health").status_code == 200 and c.get("/stats").status_code == 200
        assert c.get("/duplicates").status_code == 429  # expensive too, whatever its key rule says after
    with served(
        hostile_index_dir,
        hostile_search_service,
        tmp_path,
        client=("198.51.100.9", 1),
        rate_limit_per_s=0.5,
        rate_limit_burst=3,
    ) as other:
        assert other.post("/search", json={"key": known_key()}).status_code == 200


def test_a_bucket_refills_at_its_rate():
    now = [0.0]
    buckets = TokenBuckets(per_s=2.0, burst=2, clock=lambda: now[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("a") == 0.0 and buckets.take("b") == 0.0


def test_the_default_is_off_on_loopback_and_on_elsewhere():
    assert rate_limit_for_host(Settings(), "127.0.0.1").rate_limit_per_s == 0
    assert rate_limit_for_host(Settings(), "::1").rate_limit_per_s == 0
    assert rate_limit_for_host(Settings(), "0.0.0.0").rate_limit_per_s == DEFAULT_PER_S
    assert rate_limit_for_host(Settings(rate_limit_per_s=3.0), "127.0.0.1").rate_limit_per_s == 3.0
    assert Settings.from_env({"VISUAL_SEARCH_RATE_LIMIT_PER_S": "0"}).rate_limit_per_s == 0.0
    assert is_expensive("POST", "/search") and is_expensive("DELETE", "/items/a.jpg")
    assert is_expensive("GET", "/duplicates") and not is_expensive("GET", "/images/a.jpg")


def test_an_app_made_without_a_bind_has_no_limit(hostile_index_dir, hostile_search_service, tmp_path):
    with served(hostile_index_dir, hostile_search_service, tmp_path) as client:
        assert all(client.post("/search", json={"key": known_key()}).status_code == 200 for _ in range(150))
