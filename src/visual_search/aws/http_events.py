"""API Gateway HTTP API (payload v2) events in, Lambda proxy responses out, over the transport-neutral SearchApi.

Routes: POST /search, GET /images/{key+} (302 to a short-lived URL of an indexed image), GET /shared-uploads/{key+}
(302 to a short-lived URL of a kept query photo), GET /health, GET /stats,
and the catalogue routes of api/catalogue_api.py: GET /items, POST /items, DELETE /items/{key+}, GET /duplicates.
On AWS an added item is written to the bucket and deleting one removes its object; the bucket's events then
index or remove it, so every change to the catalogue takes one path. CORS headers and OPTIONS preflights are
answered by the HTTP API's CORS configuration, not here.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable

from visual_search.api.catalogue_api import CatalogueApi, check_write_key
from visual_search.api.search_api import API_KEY_HEADER, SearchApi, check_api_key, error_result
from visual_search.core.errors import InvalidRequestError, NotFoundError, error_body
from visual_search.core.ports import VectorIndex

JSON_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}
READ_KEYED_PATHS = ("/search", "/stats", "/items")  # behind the read key when one is configured
WRITE_KEYED_PATHS = ("/duplicates",)  # a neighbour search per image: behind the write key always
HOW_TO_SET_THE_KEY = "deploy the stack with WriteApiKeyParameterName naming an SSM SecureString"


def handle_http_event(
    event: dict,
    api: SearchApi,
    index: VectorIndex,
    image_url: Callable[[str], str],
    *,
    api_key: str | None = None,
    catalogue: CatalogueApi | None = None,
    write_api_key: str | None = None,
) -> dict:
    """The Lambda response for one HTTP API v2 event; never raises (errors become JSON error responses).
    With `api_key` (the read key) set, /search, /stats and the catalogue's listing need it or `write_api_key` in
    the X-API-Key header, as on the local server; adding and deleting items and /duplicates always need the write
    key (403 when none is configured)."""
    method, path = _route(event)
    try:
        given_key = _header(event, API_KEY_HEADER.lower())
        if path in READ_KEYED_PATHS and not _is_key(write_api_key, given_key):  # the write key opens reads too
            check_api_key(api_key, given_key)
        if path in WRITE_KEYED_PATHS:
            check_write_key(write_api_key, given_key, how_to_set=HOW_TO_SET_THE_KEY)
        if catalogue is not None and (
            response := _catalogue_route(event, method, path, catalogue, write_api_key, given_key)
        ):
            return response
        if method == "POST" and path == "/search":
            body = _body_bytes(event)
            return json_response(*api.handle_search(body, _header(event, "content-type")))
        if method == "GET" and path.startswith("/images/"):
            return _redirect_to_image(_path_key(event, path, "/images/"), index, image_url)
        if method == "GET" and path.startswith("/shared-uploads/"):
            return _redirect_to_shared_upload(_path_key(event, path, "/shared-uploads/"), api)
        if method == "GET" and path == "/health":
            return json_response(*api.health())
        if method == "GET" and path == "/stats":
            return json_response(*api.stats())
        return json_response(404, error_body("not_found", f"no route for {method} {path}"))
    except Exception as exc:  # noqa: BLE001 - the API boundary: every failure becomes a JSON error
        return json_response(*error_result(exc))


def _catalogue_route(
    event: dict, method: str, path: str, catalogue: CatalogueApi, api_key: str | None, given_key: str | None
) -> dict | None:
    """The response of a catalogue route, or None when `path` is not one."""
    query = dict(event.get("queryStringParameters") or {})
    if method == "GET" and path == "/items":
        return json_response(*catalogue.list_items(query))
    if method == "GET" and path == "/duplicates":
        return json_response(*catalogue.duplicates(query))
    if (method, path) == ("POST", "/items") or method == "DELETE" and path.startswith("/items/"):
        check_write_key(api_key, given_key, how_to_set=HOW_TO_SET_THE_KEY)
        if method == "POST":
            return json_response(*catalogue.add_item(_body_bytes(event), _header(event, "content-type")))
        return json_response(*catalogue.delete_item(_path_key(event, path, "/items/")))
    return None


def _is_key(expected: str | None, given: str | None) -> bool:
    return bool(expected) and hmac.compare_digest((given or "").encode(), (expected or "").encode())


def _path_key(event: dict, path: str, route_prefix: str) -> str:
    """The {key+} of a route: its path parameter, else the rest of the path."""
    return (event.get("pathParameters") or {}).get("key") or path[len(route_prefix) :]


def _route(event: dict) -> tuple[str, str]:
    """(method, path without the stage prefix). routeKey names the matched route; "$default" falls back to
    rawPath, from which a named stage ("/prod/search") is stripped."""
    context = event.get("requestContext") or {}
    method = str((context.get("http") or {}).get("method", "GET")).upper()
    route_key = str(event.get("routeKey") or context.get("routeKey") or "$default")
    if route_key != "$default" and " " in route_key:
        template = route_key.split(" ", 1)[1]
        if template.endswith("/{key+}"):  # /images/{key+}, /items/{key+}
            return method, template[: -len("{key+}")] + str((event.get("pathParameters") or {}).get("key", ""))
        return method, template
    path = str(event.get("rawPath") or (context.get("http") or {}).get("path") or "/")
    stage = str(context.get("stage") or "$default")
    if stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
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


def _redirect_to_shared_upload(upload_id: str, api: SearchApi) -> dict:
    location = api.shared_photo_url(upload_id)
    return {"statusCode": 302, "headers": {"location": location, "cache-control": "no-store"}, "body": ""}


RETRY_AFTER_S = 5  # a 503 is a backend that is down or busy (the endpoint's retry budget ran out): try again soon


def json_response(status: int, payload: dict) -> dict:
    headers = dict(JSON_HEADERS, **({"retry-after": str(RETRY_AFTER_S)} if status == 503 else {}))
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps(payload, ensure_ascii=False),
        "isBase64Encoded": False,
    }
