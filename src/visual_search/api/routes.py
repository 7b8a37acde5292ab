"""Every route of the HTTP API, declared once: method, path, access level, handler and request/response models.

The local server (server/app.py, FastAPI) and the Lambda front end (aws/http_events.py, API Gateway events) both
serve this table; neither declares a route of its own. A handler is transport-neutral: it takes the product's
APIs and an ApiRequest (body bytes, content type, query and path parameters) and answers an ApiResult, an
ImageAnswer or a RawAnswer. A path parameter written `{name:path}` spans slashes (an image key such as
shoes/red-1.jpg); API Gateway writes it `{name+}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field

from visual_search.api.access import Access
from visual_search.api.adaptation_api import AdaptationAction, AdaptationApi
from visual_search.api.catalogue_api import CatalogueApi
from visual_search.api.catalogue_models import (
    AddItemForm,
    DeletedResponse,
    DuplicatesQuery,
    DuplicatesResponse,
    ItemsQuery,
    ItemsResponse,
)
from visual_search.api.models import (
    ErrorResponse,
    HealthResponse,
    RegionsResponse,
    SearchRequest,
    SearchResponse,
    SearchResult,
    StatsResponse,
)
from visual_search.api.request_bodies import body_limit, max_body_bytes
from visual_search.api.results import ApiResult, ImageAnswer, RawAnswer, error_result
from visual_search.api.search_api import SearchApi
from visual_search.core.errors import UnhealthyError
from visual_search.services.adaptation import current_client
from visual_search.services.shared_uploads import media_type_of


@dataclass(frozen=True)
class ApiRequest:
    """One request as every front end hands it to a handler."""

    body: bytes = b""
    content_type: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    path: Mapping[str, str] = field(default_factory=dict)
    client: str | None = None  # the caller's address: live learning counts searches per client


class EmbeddingEndpoint(Protocol):
    """SageMaker's InvokeEndpoint, served by the in-process model (the local server only); bootstrap builds it."""

    def invoke(self, body: bytes, content_type: str | None) -> RawAnswer: ...


@dataclass
class Apis:
    """What the routes call: the transport-neutral APIs of one running process, built by bootstrap.
    `serves_files`: the local server answers a kept photo with its bytes; a Lambda redirects to the bucket."""

    search: SearchApi
    catalogue: CatalogueApi
    ui_config: Mapping[str, Any] = field(default_factory=dict)
    embedding: EmbeddingEndpoint | None = None
    adaptation: AdaptationApi = field(default_factory=AdaptationApi)
    serves_files: bool = True
    # Each answers why a part running beside the routes (a folder watcher) is unhealthy, or None: /health's 503.
    health_checks: Sequence[Callable[[], str | None]] = ()


Answer = ApiResult | ImageAnswer | RawAnswer
Handler = Callable[[Apis, ApiRequest], Answer]
BodyLimit = Callable[[str | None, int], int]  # (content type, the image limit) -> the most bytes worth reading


class ImageQuery(BaseModel):
    w: int | None = Field(default=None, description="fit in a w x w box (a cached JPEG)")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    access: Access
    handler: Handler
    summary: str
    response_model: type[BaseModel] | None = None
    status_code: int = 200
    errors: tuple[int, ...] = ()
    query_model: type[BaseModel] | None = None
    # The request body: JSON of `json_model`, multipart of `form_model` fields plus a `file`, raw images.
    json_model: type[BaseModel] | None = None
    form_model: type[BaseModel] | None = None
    raw_image_body: bool = False
    body_limit: BodyLimit | None = None  # None: the route reads no body
    local_only: bool = False  # not served by the Lambda front end
    in_schema: bool = True
    tags: tuple[str, ...] = ()

    @property
    def path_parameters(self) -> list[str]:
        return [name for name, _ in _PARAMETER.findall(self.path)]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when `method` and `path` are this route's, else None."""
        if method != self.method:
            return None
        found = _pattern(self.path).fullmatch(path)
        return found.groupdict() if found else None


_PARAMETER = re.compile(r"\{(\w+)(:path)?\}")


def _pattern(path: str) -> re.Pattern[str]:
    parts, last = [], 0
    for found in _PARAMETER.finditer(path):
        parts.append(re.escape(path[last : found.start()]))
        parts.append(f"(?P<{found.group(1)}>{'.+' if found.group(2) else '[^/]+'})")
        last = found.end()
    parts.append(re.escape(path[last:]))
    return re.compile("".join(parts))


def _form_body_limit(_content_type: str | None, max_image_bytes: int) -> int:
    return max_body_bytes(max_image_bytes)


def _small_body_limit(_content_type: str | None, _max_image_bytes: int) -> int:
    return 64 * 1024


def _search(apis: Apis, request: ApiRequest) -> Answer:
    return apis.search.handle_search(request.body, request.content_type)


def _regions(apis: Apis, request: ApiRequest) -> Answer:
    return apis.search.handle_regions(request.body, request.content_type)


def _image(apis: Apis, request: ApiRequest) -> Answer:
    return apis.search.image(request.path["key"], ImageQuery.model_validate(dict(request.query)).w)


def _shared_upload(apis: Apis, request: ApiRequest) -> Answer:
    upload_id = request.path["upload_id"]
    if not apis.serves_files:
        return ImageAnswer(redirect=apis.search.shared_photo_url(upload_id))
    data = apis.search.shared_photo(upload_id)
    return ImageAnswer(data=data, media_type=media_type_of(data), cache_control="private, max-age=300")


def _adaptation_state(apis: Apis, _request: ApiRequest) -> Answer:
    return apis.adaptation.state()


def _adaptation_control(apis: Apis, request: ApiRequest) -> Answer:
    return apis.adaptation.control(request.body)


def _health(apis: Apis, _request: ApiRequest) -> Answer:
    for problem_of in apis.health_checks:  # e.g. a folder watcher that died or is stuck
        problem = problem_of()
        if problem:
            raise UnhealthyError(problem)
    return apis.search.health()


def _stats(apis: Apis, _request: ApiRequest) -> Answer:
    return apis.search.stats()


def _list_items(apis: Apis, request: ApiRequest) -> Answer:
    return apis.catalogue.list_items(dict(request.query))


def _add_item(apis: Apis, request: ApiRequest) -> Answer:
    return apis.catalogue.add_item(request.body, request.content_type)


def _delete_item(apis: Apis, request: ApiRequest) -> Answer:
    return apis.catalogue.delete_item(request.path["key"])


def _duplicates(apis: Apis, request: ApiRequest) -> Answer:
    return apis.catalogue.duplicates(dict(request.query))


def _ui_config(apis: Apis, _request: ApiRequest) -> Answer:
    return 200, dict(apis.ui_config)


def _invocations(apis: Apis, request: ApiRequest) -> Answer:
    if apis.embedding is None:
        return RawAnswer(404, b'{"message": "no model is served here"}')
    return apis.embedding.invoke(request.body, request.content_type)


_SEARCH_ERRORS = (400, 401, 404, 413, 415, 422, 502, 504)
_CATALOGUE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422)

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/search",
        Access.READ,
        _search,
        "Find the catalogue images most similar to an image, an image URL or an indexed key.",
        response_model=SearchResponse,
        errors=_SEARCH_ERRORS,
        json_model=SearchRequest,
        form_model=SearchRequest,
        raw_image_body=True,
        body_limit=body_limit,
    ),
    Route(
        "POST",
        "/regions",
        Access.READ,
        _regions,
        "The hotspots of a photo query (the body /search takes, without key or crop): up to four items, none for "
        "a photo of one item. The web UI asks after showing the results, so no search waits for them.",
        response_model=RegionsResponse,
        errors=_SEARCH_ERRORS,
        json_model=SearchRequest,
        form_model=SearchRequest,
        raw_image_body=True,
        body_limit=body_limit,
    ),
    # Open, unlike the other reading routes: a browser loads result images with <img src>, which sends no
    # X-API-Key header; only indexed images are shown, and only to someone who already knows the key.
    Route(
        "GET",
        "/images/{key:path}",
        Access.OPEN,
        _image,
        "The indexed image of `key`: its file (local indexes) or a redirect to a short-lived URL (S3).",
        errors=(404, 422),
        query_model=ImageQuery,
    ),
    # Open for the same reason: the shared search's page shows the kept photo with <img src>.
    Route(
        "GET",
        "/shared-uploads/{upload_id:path}",
        Access.OPEN,
        _shared_upload,
        "The photo of a shared search, by the id a search answered (`upload`): 410 once it has expired; on AWS "
        "a redirect to a short-lived URL of it.",
        errors=(400, 404, 410),
    ),
    Route(
        "GET",
        "/health",
        Access.OPEN,
        _health,
        "Whether the model is loaded and whatever runs beside the routes (a folder watcher) is working.",
        response_model=HealthResponse,
        errors=(503,),
    ),
    Route(
        "GET",
        "/stats",
        Access.READ,
        _stats,
        "How many images are indexed, per label, and with which model.",
        response_model=StatsResponse,
        errors=_SEARCH_ERRORS,
    ),
    Route(
        "GET",
        "/items",
        Access.READ,
        _list_items,
        "A page of the catalogue ordered by key (`offset`, `limit` 1-500, `label`), its total and label counts.",
        response_model=ItemsResponse,
        errors=_CATALOGUE_ERRORS,
        query_model=ItemsQuery,
        tags=("catalogue",),
    ),
    Route(
        "POST",
        "/items",
        Access.WRITE,
        _add_item,
        "Store an image and index it: multipart `file`, optional `key` (default: its content hash), `label`, "
        "product fields and `attributes` (a JSON object). 201 when indexed, 202 when the bucket's event will "
        "index it; 409 if the key is taken; the same size, pixel and type limits as /search.",
        response_model=SearchResult,
        status_code=201,
        errors=_CATALOGUE_ERRORS,
        form_model=AddItemForm,
        body_limit=_form_body_limit,
        tags=("catalogue",),
    ),
    Route(
        "DELETE",
        "/items/{key:path}",
        Access.WRITE,
        _delete_item,
        "Remove an item from the index, and its file when it lives in the uploads folder or a watched folder "
        "(on AWS: its object, whose event removes the record).",
        response_model=DeletedResponse,
        errors=_CATALOGUE_ERRORS,
        tags=("catalogue",),
    ),
    Route(
        "GET",
        "/duplicates",
        Access.WRITE,
        _duplicates,
        "Groups of near-identical images (resized, recompressed, slightly cropped, mirrored); `threshold` 0.5-1.",
        response_model=DuplicatesResponse,
        errors=_CATALOGUE_ERRORS,
        query_model=DuplicatesQuery,
        tags=("catalogue",),
    ),
    # Read, not write: `serve` with no key configured stands in for the SageMaker endpoint of the AWS index
    # handler run on a laptop (tests/integration/test_sagemaker_route.py); with a key set it needs one.
    Route(
        "POST",
        "/endpoints/{endpoint_name}/invocations",
        Access.READ,
        _invocations,
        "SageMaker runtime's InvokeEndpoint, served by the in-process model: boto3's sagemaker-runtime client "
        "with `endpoint_url` pointed here lets the AWS index handler run unchanged on a laptop.",
        errors=_SEARCH_ERRORS,
        raw_image_body=True,
        body_limit=body_limit,
        local_only=True,
        tags=("sagemaker",),
    ),
    Route(
        "GET",
        "/adaptation",
        Access.READ,
        _adaptation_state,
        "Live learning of the query-domain centre: on or off, counts, refits (never a photo or a vector).",
        errors=(401,),
        tags=("adaptation",),
    ),
    Route(
        "POST",
        "/adaptation",
        Access.WRITE,
        _adaptation_control,
        "Freeze, unfreeze or reset (forget the running sum) live learning, or refit now (on AWS: at the refit "
        "function's next scheduled run).",
        errors=(400, 401, 403, 422),
        json_model=AdaptationAction,
        body_limit=_small_body_limit,
        tags=("adaptation",),
    ),
    Route(
        "GET",
        "/config.json",
        Access.OPEN,
        _ui_config,
        "The web UI's configuration (served by the server itself, so a config.json written for AWS cannot "
        "redirect the local UI).",
        local_only=True,
        in_schema=False,
    ),
)


def answer(route: Route, apis: Apis, request: ApiRequest) -> Answer:
    """The route's answer to `request` (access already checked); never raises: errors become their answers."""
    token = current_client.set(request.client)
    try:
        return route.handler(apis, request)
    except Exception as exc:  # noqa: BLE001 - the API boundary: every failure becomes a JSON error
        return error_result(exc)
    finally:
        current_client.reset(token)


def find_route(method: str, path: str, *, on_lambda: bool = False) -> tuple[Route, dict[str, str]] | None:
    """The route serving `method path`, and its path parameters; None when no route does."""
    for route in ROUTES:
        if on_lambda and route.local_only:
            continue
        parameters = route.match(method, path)
        if parameters is not None:
            return route, parameters
    return None


# -- OpenAPI, from the models ------------------------------------------------------------------------------


def request_body_schema(route: Route, schema_ref: Callable[[type[BaseModel]], str]) -> dict | None:
    """The OpenAPI requestBody of a route that reads one: JSON from `json_model`, multipart/form-data from
    `form_model` (its fields as form fields, objects as JSON text, plus the binary `file`), raw images.
    `schema_ref(model)` registers a model with the document and returns its $ref."""
    if route.body_limit is None:
        return None
    binary = {"type": "string", "format": "binary"}
    content: dict[str, dict] = {}
    if route.json_model is not None:
        content["application/json"] = {"schema": {"$ref": schema_ref(route.json_model)}}
    if route.form_model is not None:
        content["multipart/form-data"] = {"schema": multipart_schema(route.form_model)}
    if route.raw_image_body:
        for media_type in ("image/jpeg", "image/png", "image/webp"):
            content[media_type] = {"schema": binary}
    return {"required": True, "content": content}


def multipart_schema(form: type[BaseModel]) -> dict:
    """The multipart/form-data schema of `form`'s fields plus a required binary `file`: what a JSON body sends
    base64-encoded (`image`) travels as the file; an object or list field is sent as JSON text."""
    properties: dict[str, dict] = {"file": {"type": "string", "format": "binary"}}
    for name, model_field in form.model_fields.items():
        if name == "image":
            continue
        schema = form.model_json_schema()["properties"][name]
        if _is_scalar(schema):
            properties[name] = {key: value for key, value in schema.items() if key not in ("default", "title")}
        else:
            properties[name] = {"type": "string", "description": "JSON, as in the JSON body"}
        if model_field.description:
            properties[name]["description"] = model_field.description
    return {"type": "object", "required": ["file"], "properties": properties}


def _is_scalar(schema: dict) -> bool:
    kinds = [option.get("type") for option in schema.get("anyOf", [schema])]
    return bool(kinds) and all(kind in ("string", "integer", "number", "boolean", "null") for kind in kinds)


def query_parameters(route: Route) -> list[dict]:
    """OpenAPI parameters: the path's, then the query model's fields."""
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in route.path_parameters
    ]
    if route.query_model is not None:
        schema = route.query_model.model_json_schema()
        for name, model_field in route.query_model.model_fields.items():
            parameter = {"name": name, "in": "query", "required": model_field.is_required()}
            parameter["schema"] = {key: value for key, value in schema["properties"][name].items() if key != "title"}
            if model_field.description:
                parameter["description"] = model_field.description
            parameters.append(parameter)
    return parameters


def error_responses(route: Route) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse} for status in route.errors}
