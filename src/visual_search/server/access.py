"""The local server's guards: CORS, bounded body reading, security headers and error responses. (Who may call
which route is the route table's access level, api/access.py.)

CORS is off by default because the server binds 127.0.0.1; it matters once it listens on a network.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from visual_search.api.access import API_KEY_HEADER
from visual_search.api.request_bodies import body_too_large
from visual_search.api.results import describe_validation_errors, error_result
from visual_search.core.errors import VisualSearchError, error_body
from visual_search.server.http_guard import HttpGuard

logger = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def add_cors(app: FastAPI, origins: tuple[str, ...]) -> None:
    """Only the listed origins may call the API from a browser; with none, no CORS headers are sent at all."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE"],  # DELETE: the catalogue page removes items
        allow_headers=["Content-Type", API_KEY_HEADER],
        max_age=600,
    )


def add_error_handlers(app: FastAPI) -> None:
    """Every error, including FastAPI's own 404/405/422, answers {"error": {"code", "message"}}."""

    async def library_error(_request: Request, exc: VisualSearchError) -> JSONResponse:
        status, body = error_result(exc)
        return JSONResponse(body, status_code=status)

    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("validation_error", describe_validation_errors(exc.errors())), status_code=422)

    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    async def client_gone(request: Request, _exc: ClientDisconnect) -> Response:
        # Nobody is left to answer: one line for the operator, not a traceback (the response is never sent).
        logger.info("the client disconnected before sending the whole body of %s %s", request.method, request.url.path)
        return Response(status_code=400)

    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        status, body = error_result(exc)  # logs it; the client never sees a stack trace
        return JSONResponse(body, status_code=status)

    # The decorator form: Starlette types add_exception_handler for handlers of Exception itself only.
    app.exception_handler(VisualSearchError)(library_error)
    app.exception_handler(RequestValidationError)(validation_error)
    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(ClientDisconnect)(client_gone)
    app.exception_handler(Exception)(unexpected_error)


async def read_body_capped(request: Request, limit_bytes: int) -> bytes:
    """The body; ImageTooLargeError (413, stating `limit_bytes`) as soon as it is known to exceed the limit,
    without buffering the rest."""
    content_type = request.headers.get("content-type")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit_bytes:
        raise body_too_large(limit_bytes, content_type)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise body_too_large(limit_bytes, content_type)
        chunks.append(chunk)
    return b"".join(chunks)


def add_http_guard(app: FastAPI, max_image_bytes: int) -> None:
    """HEAD, real Allow headers on 405, body limits on every route, Retry-After on 503 (see http_guard.py)."""
    app.add_middleware(HttpGuard, router=app.router, max_image_bytes=max_image_bytes)


def add_security_headers(app: FastAPI) -> None:
    """nosniff and no-referrer on every response, as a plain ASGI wrapper (cheaper than BaseHTTPMiddleware)."""
    app.add_middleware(_SecurityHeaders)


class _SecurityHeaders:
    _HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self._HEADERS if name not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
