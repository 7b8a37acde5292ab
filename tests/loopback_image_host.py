"""A loopback HTTP server playing an image host, honest or hostile: photos, redirects, slow and endless bodies."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


@dataclass
class HostLog:
    """What the host saw: each request's path and Host header, so tests can assert a refused URL was never fetched."""

    requests: list[tuple[str, str]] = field(default_factory=list)


def _handler(photo: bytes, log: HostLog):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            log.requests.append((self.path, self.headers.get("Host", "")))
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            route = getattr(self, "route_" + parts.path.strip("/").replace("-", "_").replace(".", "_"), None)
            if route is None:
                self.send_error(404)
                return
            try:
                route(query)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should with slow and endless bodies

        def _headers(self, status: int, content_type: str, length: int | None, extra: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if length is not None:
                self.send_header("Content-Length", str(length))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            if length is None:
                self.send_header("Connection", "close")
            self.end_headers()

        def route_photo_jpg(self, _query):
            self._headers(200, "image/jpeg", len(photo))
            self.wfile.write(photo)

        def route_redirect(self, query):
            self._headers(302, "text/plain", 0, {"Location": query["to"][0]})

        def route_loop(self, _query):
            self._headers(302, "text/plain", 0, {"Location": "/loop"})

        def route_page_html(self, _query):
            body = b"<html><body>not a photo</body></html>"
            self._headers(200, "text/html; charset=utf-8", len(body))
            self.wfile.write(body)

        def route_slow_jpg(self, _query):
            self._headers(200, "image/jpeg", len(photo))
            for offset in range(0, len(photo), 16):  # 16 bytes every 0.2 s: each read is quick, the whole is not
                self.wfile.write(photo[offset : offset + 16])
                self.wfile.flush()
                time.sleep(0.2)

        def route_endless_jpg(self, _query):
            self._headers(200, "image/jpeg", None)
            chunk = b"\xff" * 65536
            for _ in range(100_000):  # ~6.5 GB if nobody stops reading; bounded so the thread always ends
                self.wfile.write(chunk)

        def route_huge_jpg(self, _query):
            self._headers(200, "image/jpeg", 50 * 1024 * 1024 * 1024)
            self.wfile.write(photo)

        def route_boom(self, _query):
            self._headers(500, "text/plain", 4)
            self.wfile.write(b"boom")

    return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients hanging up on slow and endless bodies is the point of those routes


@contextmanager
def image_host(photo: bytes, host: str = "127.0.0.1") -> Iterator[tuple[int, HostLog]]:
    """Serves on a free port of `host`; yields (port, log)."""
    log = HostLog()
    server = _QuietServer((host, 0), _handler(photo, log))
    thread = threading.Thread(target=server.serve_forever, name="image-host", daemon=True)
    thread.start()
    try:
        yield server.server_address[1], log
    finally:
        server.shutdown()
        server.server_close()
