"""API Gateway HTTP API (payload v2) events in, Lambda proxy responses out: the route table of api/routes.py
served on AWS (the local server serves the same table with FastAPI).

GET /images/{key+} and GET /shared-uploads/{key+} answer 302 to a short-lived URL of an indexed image or of a
kept query photo. On AWS an added item is written to the
bucket and deleting one removes its object; the bucket's events then index or remove it, so every change to the
catalogue takes one path. CORS headers and OPTIONS preflights are answered by the HTTP API's CORS configuration,
not here.

Why not Powertools' APIGatewayHttpResolver: the routes are already declared once, in api/routes.py, with their
access levels and models, so a second router would restate them; its dynamic path segments stop at '/', while
an image key spans them (/items/shoes/red-1.jpg); and this function needs the body as bytes (images), which the
resolver hands over as text. What remains here is the part that is truly API Gateway's: the method and path
(stage prefix, routeKey), headers, the base64 body and the proxy response.
"""

from __future__ import annotations

import base64
import binascii
import json

from visual_search.api.access import API_KEY_HEADER, AccessKeys
from visual_search.api.results import ImageAnswer, RawAnswer, error_result
from visual_search.api.routes import Answer, ApiRequest, Apis, answer, find_route
from visual_search.core.errors import InvalidRequestError, error_body

JSON_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}
RETRY_AFTER_S = 5  # a 503 is a backend that is down or busy (the endpoint's retry budget ran out): try again soon


def handle_http_event(event: dict, apis: Apis, keys: AccessKeys) -> dict:
    """The Lambda response for one HTTP API v2 event; never raises (errors become JSON error responses)."""
    method, path = _method_and_path(event)
    try:
        found = find_route(method, path, on_lambda=True)
        if found is None:
            return json_response(404, error_body("not_found", f"no route for {method} {path}"))
        route, path_parameters = found
        keys.check(route.access, _header(event, API_KEY_HEADER.lower()))
        request = ApiRequest(
            body=_body_bytes(event) if route.body_limit is not None else b"",
            content_type=_header(event, "content-type"),
            query=dict(event.get("queryStringParameters") or {}),
            path=path_parameters,
            client=((event.get("requestContext") or {}).get("http") or {}).get("sourceIp"),
        )
        return proxy_response(answer(route, apis, request))
    except Exception as exc:  # noqa: BLE001 - the API boundary: every failure becomes a JSON error
        return json_response(*error_result(exc))


def proxy_response(result: Answer) -> dict:
    if isinstance(result, ImageAnswer):
        if result.redirect is None:  # a Lambda answers images with a redirect to the bucket, never their bytes
            raise InvalidRequestError("this image cannot be served here")
        return {"statusCode": 302, "headers": {"location": result.redirect, "cache-control": "no-store"}, "body": ""}
    if isinstance(result, RawAnswer):
        return {
            "statusCode": result.status,
            "headers": {"content-type": result.media_type, "cache-control": "no-store"},
            "body": result.body.decode("utf-8"),
            "isBase64Encoded": False,
        }
    return json_response(*result)


def json_response(status: int, payload: dict) -> dict:
    headers = dict(JSON_HEADERS, **({"retry-after": str(RETRY_AFTER_S)} if status == 503 else {}))
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps(payload, ensure_ascii=False),
        "isBase64Encoded": False,
    }


def _method_and_path(event: dict) -> tuple[str, str]:
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
