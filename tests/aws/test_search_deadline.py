"""One deadline for the search function (issue 23 §2.9): taken from the invocation's remaining time, it bounds
the URL fetch, the endpoint calls and OpenSearch with their retries together, so a slow backend ends in a JSON
503 before Lambda's timeout instead of each call spending its own budget. Real servers on loopback: the
SageMaker-compatible endpoint (throttling), a socket that accepts and never answers (a hung OpenSearch or image
host)."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import pytest
from test_search_function_settings import answer, catalogue, search_env, search_event  # noqa: F401 - fixtures

from visual_search.aws import handlers
from visual_search.aws.invocation_deadline import ANSWER_RESERVE_S, seconds_left
from visual_search.core.deadline import DeadlineExceededError, deadline_after
from visual_search.core.errors import BackendUnavailableError, FetchTimeoutError
from visual_search.fetching.url_fetch import UrlFetcher
from visual_search.indexes.opensearch.index import OpenSearchIndex


def lambda_context(remaining_s: float) -> SimpleNamespace:
    """A Lambda context whose invocation ends `remaining_s` from now, as get_remaining_time_in_millis says."""
    ends = time.monotonic() + remaining_s
    return SimpleNamespace(get_remaining_time_in_millis=lambda: int(max(0.0, ends - time.monotonic()) * 1000))


@pytest.fixture
def silent_server():
    """A TCP listener that accepts connections and never answers: a backend hung mid-request."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for connection in accepted:
        connection.close()
    listener.close()


def test_the_deadline_is_the_invocations_remaining_time_less_a_reserve_for_answering():
    assert seconds_left(None) is None
    assert seconds_left(lambda_context(25.0)) == pytest.approx(25.0 - ANSWER_RESERVE_S, abs=0.05)
    assert seconds_left(lambda_context(0.5)) == 0.0


def test_a_throttling_endpoint_is_given_up_on_before_the_deadline_not_after_its_own_budget(
    search_env,  # noqa: F811 - the fixture
    monkeypatch,
    loopback_endpoint,
    demo_photos,
):
    """The template's budget (10 s a request, 5 s an attempt) retries a throttling endpoint for about 5 s; with
    8 s of the invocation left (6.5 s after the reserve) no attempt may start that could end past the deadline,
    so the retries stop after about 1.5 s."""
    monkeypatch.setenv("VISUAL_SEARCH_SAGEMAKER_BUDGET_S", "10")
    handlers.reset_cached_services()
    photo = demo_photos[0].read_bytes()
    assert answer(handlers.search_handler(search_event(photo), lambda_context(25)))[0] == 200  # a warm container
    loopback_endpoint.throttle_next = 1000
    before = len(loopback_endpoint.requests)
    started = time.monotonic()
    status, body = answer(handlers.search_handler(search_event(photo), lambda_context(8.0)))
    elapsed = time.monotonic() - started
    assert (status, body["error"]["code"]) == (503, "backend_unavailable")
    assert elapsed < 3.5, f"{elapsed:.1f} s: the endpoint's own budget ended it, not the deadline"
    assert len(loopback_endpoint.requests) - before > 1, "the deadline left room for retries, and they ran"


def test_a_hung_opensearch_ends_at_the_deadline_not_after_four_ten_second_attempts(silent_server):
    started = time.monotonic()
    with deadline_after(1.5), pytest.raises(BackendUnavailableError):
        OpenSearchIndex(f"http://{silent_server}/products", model_id="m", dimension=3)
    assert time.monotonic() - started < 2.5


def test_the_search_function_answers_a_json_503_when_opensearch_hangs(
    search_env,  # noqa: F811 - the fixture
    monkeypatch,
    silent_server,
    demo_photos,
):
    monkeypatch.setenv("VISUAL_SEARCH_INDEX", f"http://{silent_server}/products")
    handlers.reset_cached_services()
    started = time.monotonic()
    response = handlers.search_handler(search_event(demo_photos[0].read_bytes()), lambda_context(4.0))
    assert time.monotonic() - started < 4.0 - ANSWER_RESERVE_S + 0.5
    status, body = answer(response)
    assert (status, body["error"]["code"]) == (503, "backend_unavailable") and response["headers"]["retry-after"]


def test_a_hung_image_host_ends_at_the_deadline_not_after_the_fetch_timeout(silent_server):
    fetcher = UrlFetcher(allowlist=["127.0.0.1"], timeout_s=5.0)
    started = time.monotonic()
    with deadline_after(1.0), pytest.raises(FetchTimeoutError):
        fetcher.fetch(f"http://{silent_server}/photo.jpg")
    assert time.monotonic() - started < 1.8


def test_nothing_is_started_once_the_deadline_has_passed(silent_server):
    with deadline_after(0.0), pytest.raises(DeadlineExceededError):
        UrlFetcher(allowlist=["127.0.0.1"]).fetch(f"http://{silent_server}/photo.jpg")
