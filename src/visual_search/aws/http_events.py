"""API Gateway HTTP API (payload v2) events in, Lambda proxy responses out, over the transport-neutral SearchApi.

Routes: POST /search, GET /images/{key+} (302 to a short-lived URL of an indexed image), GET /health, GET /stats.
CORS headers and OPTIONS preflights are answered by the HTTP API's CORS configuration, not here.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Callable

from visual_search.core.errors import InvalidRequestError, NotFoundError
from visual_search.core.ports import VectorIndex
from visual_search.api.search_api import API_KEY_HEADER, SearchApi, check_api_key, error_result
from visual_search.core.errors import error_body

JSON_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}


def handle_http_event(
    event: dict, api: SearchApi, index: VectorIndex, image_url: Callable[[str], str], *, api_key: str | None = None
) -> dict:
    """The Lambda response for one HTTP API v2 event; never raises (errors become JSON error responses).
    With `api_key` set, /search and /stats need it in the X-API-Key header, as on the local server."""
    method, path = _route(event)
    try:
        if path in ("/search", "/stats"):
            check_api_key(api_key, _header(event, API_KEY_HEADER.lower()))
        if method == "POST" and path == "/search":
            body = _body_bytes(event)
            return json_response(*api.handle_search(body, _header(event, "content-type")))
        if method == "GET" and path.startswith("/images/"):
            key = (event.get("pathParameters") or {}).get("key") or path[len("/images/"):]
            return _redirect_to_image(key, index, image_url)
        if method == "GET" and path == "/health":
            return json_response(*api.health())
        if method == "GET" and path == "/stats":
            return json_response(*api.stats())
        return json_response(404, error_body("not_found", f"no route for {method} {path}"))
    except Exception as exc:  # noqa: BLE001 - the API boundary: every failure becomes a JSON error
        return json_response(*error_result(exc))


def _route(event: dict) -> tuple[str, str]:
    """(method, path without the stage prefix). routeKey names the matched route; "$default" falls back to
    rawPath, from which a named stage ("/prod/search") is stripped."""
    context = event.get("requestContext") or {}
    method = str((context.get("http") or {}).get("method", "GET")).upper()
    route_key = str(event.get("routeKey") or context.get("routeKey") or "$default")
    if route_key != "$default" and " " in route_key:
        template = route_key.split(" ", 1)[1]
        if template == "/images/{key+}":
            return method, "/images/" + str((event.get("pathParameters") or {}).get("key", ""))
        return method, template
    path = str(event.get("rawPath") or (context.get("http") or {}).get("path") or "/")
    stage = str(context.get("stage") or "$default")
    if stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1:]
    return method, path


def _body_bytes(event: dict) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("the request body is not valid base64") from None
    return body.encode("utf-8")


def _header(event: dict, name: str) -> str | None:
    # HTTP API v2 lower-cases header names; sample events and other callers may not.
    for header, value in (event.get("headers") or {}).items():
        if header.lower() == name:
            return value
    return None


def _redirect_to_image(key: str, index: VectorIndex, image_url: Callable[[str], str]) -> dict:
    # Only indexed images are served, so the route cannot be used to read arbitrary objects of the bucket.
    if not key or not index.get([key]):
        raise NotFoundError(f"no indexed image has the key {key!r}")
    return {"statusCode": 302, "headers": {"location": image_url(key), "cache-control": "no-store"}, "body": ""}


RETRY_AFTER_S = 5  # a 503 is a backend that is down or busy (the endpoint's retry budget ran out): try again soon


def json_response(status: int, payload: dict) -> dict:
    headers = dict(JSON_HEADERS, **({"retry-after": str(RETRY_AFTER_S)} if status == 503 else {}))
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps(payload, ensure_ascii=False),
        "isBase64Encoded": False,
    }
