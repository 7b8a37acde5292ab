"""Connection-level limits of the local server, which uvicorn does not give: slow and idle clients are cut off,
connections are capped, and protocol errors answer in the API's JSON shape.

- Headers must arrive within `header_timeout_s` of the connection opening (or of the previous response on a
  kept-alive connection), however the bytes trickle in; the body within `body_timeout_s` of the headers. Past
  either deadline the client gets a 408 JSON error and the connection is closed; a connection that never sent a
  byte is simply closed. Idle kept-alive connections close after `keep_alive_s` (uvicorn's own timer).
- At most `max_connections` connections are served at once; a request on any further one gets a 503 JSON error
  with Retry-After and the connection is closed.
- Requests h11 cannot parse (a bad chunk size, conflicting Content-Length headers) get a 400 JSON error instead
  of uvicorn's text/plain, and no response carries `server: uvicorn`.

It subclasses uvicorn's h11 protocol, the one implementation this project installs (httptools is not a
dependency), and uses only its documented state (`h11.Connection.their_state`) and its send_400_response hook.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from visual_search.core.errors import error_body
from visual_search.server.http_guard import RETRY_AFTER_S

logger = logging.getLogger(__name__)
_REASONS = {400: "Bad Request", 408: "Request Timeout"}


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0  # a 14 MB body at 4 Mbit/s; a laptop's own browser sends it in milliseconds
    keep_alive_s: int = 5  # whole seconds: uvicorn's keep-alive timer takes an int
    max_connections: int = 64


def server_config(app, *, host: str, port: int, limits: ConnectionLimits = ConnectionLimits(), **options):
    """A uvicorn.Config serving `app` with these limits (and without a Server header)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        timeout_keep_alive=limits.keep_alive_s,
        server_header=False,
        **options,
    )


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    class Guarded(_GuardedH11Protocol):
        pass

    Guarded.limits = limits
    return Guarded


class _GuardedH11Protocol(H11Protocol):
    limits: ConnectionLimits

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._read_timer: asyncio.TimerHandle | None = None
        self._reading: str | None = None
        self._bytes_seen = False
        if len(self.connections) > self.limits.max_connections:
            self.app = _too_many_connections  # this connection's requests only; the others keep the real app
        self._expect_headers()

    def data_received(self, data: bytes) -> None:
        self._bytes_seen = True
        super().data_received(data)
        self._follow_request_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._follow_request_state()

    def connection_lost(self, exc) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._cancel_timer()
        self._send_error_and_close(
            400,
            "bad_http_request",
            "the request is not valid HTTP/1.1 (its request line, headers, Content-Length or chunk sizes)",
        )

    # Deadlines follow h11's view of the client: IDLE/SEND_BODY while it is still sending a request.
    def _follow_request_state(self) -> None:
        state = self.conn.their_state
        if state is h11.IDLE and self._reading != "headers" and self.conn.our_state is h11.IDLE:
            self._expect_headers()
        elif state is h11.SEND_BODY and self._reading != "body":
            self._start_timer("body", self.limits.body_timeout_s)
        elif state not in (h11.IDLE, h11.SEND_BODY):
            self._cancel_timer()

    def _expect_headers(self) -> None:
        self._bytes_seen = False
        self._start_timer("headers", self.limits.header_timeout_s)

    def _start_timer(self, phase: str, seconds: float) -> None:
        self._cancel_timer()
        self._reading = phase
        self._read_timer = self.loop.call_later(seconds, self._on_deadline, phase, seconds)

    def _cancel_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        self._read_timer, self._reading = None, None

    def _on_deadline(self, phase: str, seconds: float) -> None:
        self._read_timer, self._reading = None, None
        if self.transport.is_closing():
            return
        answered = self.cycle is not None and self.cycle.response_started
        if answered or (phase == "headers" and not self._bytes_seen):
            self.transport.close()  # answered already (an early 413), or idle: nothing is left to say
            return
        logger.info("closing a connection from %s: its request %s took over %g s", self.client, phase, seconds)
        self._send_error_and_close(408, "request_timeout", f"the request {phase} took longer than {seconds:g} s")
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the route waiting for the body gets http.disconnect and gives up
            self.cycle.message_event.set()

    def _send_error_and_close(self, status: int, code: str, message: str) -> None:
        # Written as bytes, not through h11, whose state machine will not answer a request it has not parsed.
        body = json.dumps(error_body(code, message)).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()


async def _too_many_connections(scope, receive, send) -> None:
    body = json.dumps(
        error_body("too_many_connections", "the server has too many open connections; try again")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
