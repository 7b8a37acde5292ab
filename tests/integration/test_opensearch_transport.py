"""OpenSearchIndex over real sockets that misbehave: 429 then recovery, 401/403, a closed port, signed requests.

A small loopback HTTP server answers with scripted statuses and, once the script runs out, forwards to the
real node (or keeps answering the last status). Backoff is shortened so the failures stay quick.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np
import pytest

from visual_search.core.errors import BackendUnauthorizedError, BackendUnavailableError
from visual_search.core.records import ImageRecord
from visual_search.indexes.opensearch.connection import AwsSigV4Auth
from visual_search.indexes.opensearch.index import OpenSearchIndex
from visual_search.indexes.opensearch.session import RetryPolicy

QUICK_RETRY = RetryPolicy(attempts=4, first_delay_s=0.01, max_delay_s=0.05)
ERROR_BODIES = {
    429: {"error": {"type": "rejected_execution_exception", "reason": "rejected: queue full"}, "status": 429},
    401: {"error": {"type": "security_exception", "reason": "missing authentication credentials"}, "status": 401},
    403: {"error": {"type": "security_exception", "reason": "no permissions"}, "status": 403},
    503: {"error": {"type": "cluster_block_exception", "reason": "not ready"}, "status": 503},
}


class ScriptedServer:
    """Answers the first requests with `statuses`; afterwards forwards to `upstream`, or repeats the last status."""

    def __init__(self, statuses: list[int], upstream: str | None = None, bulk_rejections: int = 0):
        self.statuses, self.upstream, self.bulk_rejections = list(statuses), upstream, bulk_rejections
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                server.requests.append((self.command, self.path, headers))
                if server.bulk_rejections and "_bulk" in self.path:
                    # A bulk request that succeeds as a whole while every item is refused with 429.
                    server.bulk_rejections -= 1
                    actions = [json.loads(line) for line in body.splitlines() if line.strip()]
                    items = [
                        {kind: {"status": 429, "error": {"type": "es_rejected_execution_exception"}}}
                        for action in actions
                        for kind in action
                        if kind in ("index", "delete")
                    ]
                    payload = json.dumps({"took": 1, "errors": True, "items": items}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if server.statuses or not server.upstream:
                    status = server.statuses.pop(0) if server.statuses else server.last_status
                    server.last_status = status
                    payload = json.dumps(ERROR_BODIES[status]).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                target = urlsplit(server.upstream)
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                forwarded = {name: value for name, value in self.headers.items() if name.lower() != "host"}
                connection.request(self.command, self.path, body=body or None, headers=forwarded)
                answer = connection.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                connection.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.last_status = statuses[-1] if statuses else 200
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.opensearch
def test_two_429_answers_are_retried_and_the_third_attempt_succeeds(opensearch_url):
    name = f"it-retry-{uuid.uuid4().hex[:8]}"
    with ScriptedServer([429, 429], upstream=opensearch_url) as server:
        index = OpenSearchIndex(f"{server.url}/{name}", model_id="m", dimension=4, retry=QUICK_RETRY)
        try:
            assert index.count() == 0
            assert len(server.requests) >= 3
            assert index.search([1.0, 0.0, 0.0, 0.0], k=3) == []
        finally:
            index.drop()


@pytest.mark.opensearch
def test_bulk_items_refused_with_429_are_resent_until_they_are_stored(opensearch_url):
    name = f"it-bulk-{uuid.uuid4().hex[:8]}"
    with ScriptedServer([], upstream=opensearch_url, bulk_rejections=2) as server:
        index = OpenSearchIndex(f"{server.url}/{name}", model_id="m", dimension=4, retry=QUICK_RETRY)
        try:
            records = [
                ImageRecord(key=f"k{n}", uri=f"/k{n}.jpg", content_hash="0" * 64, width=1, height=1) for n in range(3)
            ]
            index.upsert(records, np.eye(4, dtype=np.float32)[:3])
            assert index.count() == 3
            assert sum("_bulk" in path for _, path, _ in server.requests) == 3
        finally:
            index.drop()


@pytest.mark.opensearch
def test_bulk_items_refused_on_every_attempt_give_backend_unavailable(opensearch_url):
    name = f"it-bulk-{uuid.uuid4().hex[:8]}"
    with ScriptedServer([], upstream=opensearch_url, bulk_rejections=QUICK_RETRY.attempts) as server:
        index = OpenSearchIndex(f"{server.url}/{name}", model_id="m", dimension=4, retry=QUICK_RETRY)
        try:
            record = ImageRecord(key="k", uri="/k.jpg", content_hash="0" * 64, width=1, height=1)
            with pytest.raises(BackendUnavailableError, match="kept refusing items with HTTP 429"):
                index.upsert([record], np.eye(4, dtype=np.float32)[:1])
        finally:
            index.drop()


def test_a_node_that_keeps_answering_429_gives_backend_unavailable_after_bounded_attempts():
    with ScriptedServer([429]) as server:
        with pytest.raises(BackendUnavailableError, match="429") as raised:
            OpenSearchIndex(f"{server.url}/products", model_id="m", dimension=4, retry=QUICK_RETRY)
    assert len(server.requests) == QUICK_RETRY.attempts
    assert raised.value.http_status == 503


def test_5xx_answers_are_retried_too():
    with ScriptedServer([503]) as server:
        with pytest.raises(BackendUnavailableError, match="503"):
            OpenSearchIndex(f"{server.url}/products", model_id="m", dimension=4, retry=QUICK_RETRY)
    assert len(server.requests) == QUICK_RETRY.attempts


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_give_an_unauthorized_error_without_retrying(status):
    with ScriptedServer([status]) as server:
        with pytest.raises(BackendUnauthorizedError, match=rf"HTTP {status}.*credentials") as refused:
            OpenSearchIndex(f"{server.url}/products", model_id="m", dimension=4, retry=QUICK_RETRY)
    assert len(server.requests) == 1
    assert refused.value.http_status == 503  # the service's credentials: never a 401 asking the shopper for a key


def test_a_closed_port_gives_a_connection_refused_message():
    port = closed_port()
    with pytest.raises(
        BackendUnavailableError, match=rf"127\.0\.0\.1:{port}.*connection refused.*opensearch\.sh start"
    ):
        OpenSearchIndex(f"opensearch://127.0.0.1:{port}/products", model_id="m", dimension=4, retry=QUICK_RETRY)


def test_url_userinfo_is_sent_as_basic_auth_and_never_shown_in_messages():
    with ScriptedServer([401]) as server:
        url = server.url.replace("http://", "http://shop%40example:s3cret@")
        with pytest.raises(BackendUnauthorizedError) as raised:
            OpenSearchIndex(f"{url}/products", model_id="m", dimension=4, retry=QUICK_RETRY)
    authorization = server.requests[0][2]["authorization"]
    assert authorization == "Basic " + base64.b64encode(b"shop@example:s3cret").decode()
    assert "s3cret" not in str(raised.value)


def test_sigv4_auth_signs_each_request_with_the_service_and_region(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFORTESTS0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-for-tests")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with ScriptedServer([403]) as server:
        with pytest.raises(BackendUnauthorizedError):
            OpenSearchIndex(
                f"{server.url}/products",
                model_id="m",
                dimension=4,
                retry=QUICK_RETRY,
                auth=AwsSigV4Auth(region="eu-west-1", service="aoss"),
            )
    headers = server.requests[0][2]
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKEFORTESTS0000/")
    assert "/eu-west-1/aoss/aws4_request" in headers["authorization"]
    assert "x-amz-date" in headers
