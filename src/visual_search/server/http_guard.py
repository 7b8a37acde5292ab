"""HTTP semantics and limits that hold for every route, present and future, as one plain ASGI wrapper.

- HEAD on a route that answers GET is answered like GET, without the body (FastAPI routes take only the methods
  they declare, so without this the static UI mounted at / would answer 404).
- A method a route does not take is a 405 JSON error whose `Allow` lists the methods that route really takes
  (without this the static UI answers it, saying `GET, HEAD` for POST-only /search).
- No request body may exceed the body limit: a declared Content-Length over it is refused before the route
  runs, and a body that streams past it stops with a 413 as soon as it does. A raw image body's limit is the
  image limit itself; other bodies may carry the image base64-encoded, plus fields (request_bodies.body_limit).
- Every 503 says when to come back (`Retry-After`).
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.routing import Match, Route, Router

from visual_search.api.request_bodies import body_limit, body_too_large
from visual_search.core.errors import error_body

RETRY_AFTER_S = 2  # decoding queues drain in about this time (a 64 MP image decodes in well under a second)


class HttpGuard:
    def __init__(self, app, *, router: Router, max_image_bytes: int):
        self.app = app
        self.router = router
        self.max_image_bytes = max_image_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        allowed = self._allowed_methods(scope)
        method = scope["method"]
        if allowed and method not in allowed:
            return await _method_not_allowed(method, allowed)(scope, receive, send)
        send = _with_retry_after(send)
        if method == "HEAD" and allowed:
            scope, send = {**scope, "method": "GET"}, _without_body(send)
        limit = body_limit(_header(scope, b"content-type"), self.max_image_bytes)
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            error = body_too_large(limit, _header(scope, b"content-type"))
            return await JSONResponse(error_body(error.code, error.message), status_code=413)(scope, receive, send)
        await self.app(scope, _capped(receive, limit, _header(scope, b"content-type")), send)

    def _allowed_methods(self, scope) -> set[str]:
        """The methods of the API routes whose path matches (HEAD wherever GET is); empty when none matches, so
        mounts such as the static UI keep their own rules."""
        methods: set[str] = set()
        for route in self.router.routes:
            if isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
                methods |= route.methods
        if "GET" in methods:
            methods.add("HEAD")
        return methods


def _method_not_allowed(method: str, allowed: set[str]) -> JSONResponse:
    listed = ", ".join(sorted(allowed))
    return JSONResponse(
        error_body("method_not_allowed", f"{method} is not allowed here; this route takes {listed}"),
        status_code=405,
        headers={"Allow": listed},
    )


def _capped(receive, limit: int, content_type: str):
    received = 0

    async def capped_receive():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise body_too_large(limit, content_type)  # the routes' error handler answers 413 JSON
        return message

    return capped_receive


def _without_body(send):
    async def send_headers_only(message):
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only


def _with_retry_after(send):
    async def send_with_retry_after(message):
        if message["type"] == "http.response.start" and message["status"] == 503:
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"retry-after" for name, _ in headers):
                headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
            message = {**message, "headers": headers}
        await send(message)

    return send_with_retry_after


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""
