"""Slow, idle, surplus and broken clients against the real server stack (uvicorn with connection_guard), on
loopback (issue 13, finding 8 and the protocol-error messages). The limits are set small so that each case
shows its deadline in about a second."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from contextlib import contextmanager

import pytest
import uvicorn
from corpus import real_jpeg

from visual_search.core.settings import Settings
from visual_search.server.app import create_app
from visual_search.server.connection_guard import ConnectionLimits, server_config

pytestmark = pytest.mark.timeout(120)
LIMITS = ConnectionLimits(header_timeout_s=1.0, body_timeout_s=1.0, keep_alive_s=1, max_connections=3)


@pytest.fixture(scope="module")
def server(hostile_index_dir, hostile_search_service, tmp_path_factory):
    app = create_app(
        Settings(index=str(hostile_index_dir)),
        search_service=hostile_search_service,
        frontend_dir=tmp_path_factory.mktemp("no-ui"),
    )
    with _serving(app) as port:
        yield port


@contextmanager
def _serving(app):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uv = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, limits=LIMITS, log_level="info"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started, "the test server did not start"
    try:
        yield port
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _json_error(raw: bytes, status: int) -> dict:
    got_status, headers, body = _response(raw)
    assert got_status == status, raw[:300]
    assert headers["content-type"] == "application/json"
    return json.loads(body)["error"]


def test_a_connection_that_never_sends_a_byte_is_closed(server):
    with _connect(server) as sock:
        started = time.monotonic()
        assert _read_all(sock) == b""
        assert time.monotonic() - started < LIMITS.header_timeout_s + 2


def test_headers_trickling_in_are_cut_off_at_the_header_deadline(server):
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            while time.monotonic() - started < 10:  # one header byte every 0.2 s: each read is quick
                sock.sendall(b"X-A: b\r\n"[:1])
                time.sleep(0.2)
        except OSError:
            pass  # the server closed the connection, as it should
        error = _json_error(_read_all(sock), 408)
    assert error["code"] == "request_timeout" and "headers" in error["message"]
    assert time.monotonic() - started < LIMITS.header_timeout_s + 2


def test_a_body_trickling_in_is_cut_off_at_the_body_deadline(server):
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n")
        try:
            while time.monotonic() - started < 10:
                sock.sendall(b"\xff")
                time.sleep(0.2)
        except OSError:
            pass
        error = _json_error(_read_all(sock), 408)
    assert error["code"] == "request_timeout" and "body" in error["message"]
    assert time.monotonic() - started < LIMITS.body_timeout_s + 2


def test_an_idle_kept_alive_connection_is_closed(server):
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        raw = _read_all(sock)  # returns only when the server closes the kept-alive connection
    assert _response(raw)[0] == 200
    assert time.monotonic() - started < LIMITS.keep_alive_s + 2


def test_connections_over_the_cap_get_a_json_503_with_retry_after(server):
    held = [_connect(server) for _ in range(LIMITS.max_connections)]
    try:
        time.sleep(0.2)
        with _connect(server) as extra:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            raw = _read_all(extra)
        error = _json_error(raw, 503)
        assert error["code"] == "too_many_connections" and int(_response(raw)[1]["retry-after"]) > 0
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    with _connect(server) as again:  # the cap frees up as soon as the others close
        again.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _response(_read_all(again))[0] == 200


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST /search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello sent to the plain-HTTP port
    ],
)
def test_protocol_errors_are_json_400s(server, request_bytes):
    with _connect(server) as sock:
        sock.sendall(request_bytes)
        error = _json_error(_read_all(sock), 400)
    assert error["code"] == "bad_http_request" and error["message"]


def test_no_response_names_the_server_software(server):
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, headers, _ = _response(_read_all(sock))
    assert status == 200 and "server" not in headers


def test_a_client_leaving_mid_body_gives_one_log_line_and_no_traceback(server, caplog):
    caplog.set_level(logging.INFO)
    body = real_jpeg()
    with _connect(server) as sock:
        sock.sendall(
            b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        time.sleep(0.3)
    time.sleep(0.5)
    about_it = [record for record in caplog.records if "disconnect" in record.getMessage().lower()]
    assert len(about_it) == 1, [record.getMessage() for record in caplog.records]
    assert not any(record.exc_info for record in caplog.records), [r.getMessage() for r in caplog.records]
