"""The local HTTP server: the search API (a thin FastAPI layer over search_api.py) and the static web UI.

Routes: POST /search, GET /images/{key}, GET /shared-uploads/{id}, GET /health, GET /stats, GET /config.json,
OpenAPI docs at /docs, SageMaker's POST /endpoints/{name}/invocations, and the frontend/ folder at /. The model
loads once, at startup (or at the first request when no lifespan runs).
"""

from __future__ import annotations

import mimetypes
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from visual_search import __version__, bootstrap
from visual_search.api.client_limits import client_limits
from visual_search.api.models import ErrorResponse, HealthResponse, SearchRequest, SearchResponse, StatsResponse
from visual_search.api.request_bodies import body_limit
from visual_search.api.search_api import SearchApi
from visual_search.core.errors import NotFoundError, UnhealthyError, VisualSearchError
from visual_search.core.lazy import Lazy
from visual_search.core.ports import Embedder
from visual_search.core.records import ImageRecord
from visual_search.core.settings import Settings
from visual_search.embedders.sagemaker import protocol as sagemaker_protocol
from visual_search.server.access import (
    add_cors,
    add_error_handlers,
    add_http_guard,
    add_security_headers,
    api_key_checker,
    read_body_capped,
)
from visual_search.server.adaptation_routes import add_adaptation_routes
from visual_search.server.catalogue_routes import add_catalogue_routes, write_key_checker
from visual_search.server.connection_guard import server_config
from visual_search.services.shared_uploads import media_type_of
from visual_search.stores.local_folder import read_indexed_file
from visual_search.stores.thumbnail_cache import ThumbnailCache, default_thumbnail_dir

# app.state attribute: callables answering why a part running beside the routes is unhealthy (None: healthy).
HEALTH_CHECKS = "health_checks"
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 415, 422, 502, 504)}


def default_frontend_dir(settings: Settings) -> Path:
    """settings.frontend_dir (VISUAL_SEARCH_FRONTEND_DIR), else the source checkout's frontend/ folder."""
    return Path(settings.frontend_dir or Path(__file__).resolve().parents[3] / "frontend")


def local_image_url(record: ImageRecord) -> str:
    return "/images/" + quote(record.key)


class _LazySearchApi:
    """The SearchApi, built by bootstrap once (loading the model and opening the index), in a worker thread."""

    def __init__(self, settings: Settings, search_service, embedder: Embedder | None):
        self._api = Lazy(
            lambda: bootstrap.build_search_api(
                settings, url_for=local_image_url, service=search_service, embedder=embedder
            )
        )

    async def ready(self) -> SearchApi:
        """The API, built in a worker thread the first time (loading a model blocks)."""
        return self._api.get() if self._api.built else await run_in_threadpool(self._api.get)

    def get(self) -> SearchApi:
        return self._api.get()


def create_app(
    settings: Settings,
    *,
    search_service=None,
    embedder: Embedder | None = None,
    frontend_dir: str | Path | None = None,
) -> FastAPI:
    """The server's ASGI app. `search_service` (a SearchService) or `embedder` skip building them from settings."""
    services = _LazySearchApi(settings, search_service, embedder)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await run_in_threadpool(services.get)  # load the model before the first request, not during it
        yield

    app = FastAPI(title="Visual product search", version=__version__, lifespan=lifespan)
    app.state.services = services
    add_error_handlers(app)
    add_http_guard(app, settings.max_upload_bytes)
    add_security_headers(app)
    add_cors(app, settings.cors_origins)
    needs_key = [Depends(api_key_checker(settings.api_key))]

    @app.post(
        "/search",
        response_model=SearchResponse,
        responses=_ERRORS,
        dependencies=needs_key,
        openapi_extra={"requestBody": _search_request_body()},
    )
    async def search(request: Request) -> JSONResponse:
        """Find the catalogue images most similar to an image, an image URL or an indexed key."""
        api = await services.ready()
        content_type = request.headers.get("content-type")
        body = await read_body_capped(request, body_limit(content_type, api.max_upload_bytes))
        status, payload = await run_in_threadpool(api.handle_search, body, content_type)
        return JSONResponse(payload, status_code=status)

    thumbnails = ThumbnailCache(default_thumbnail_dir(settings.cache_dir), max_pixels=settings.max_pixels)

    @app.get("/images/{key:path}", responses={404: {"model": ErrorResponse}, 200: {"content": {"image/*": {}}}})
    async def image(
        key: str, w: int | None = Query(default=None, description="fit in a w x w box (a cached JPEG)")
    ) -> FileResponse:
        """The indexed image file of `key` (local indexes only; an S3-backed record has no local file)."""
        api = await services.ready()
        record = (await run_in_threadpool(api.service.index.get, [key])).get(key)
        if record is None:
            raise NotFoundError(f"no image file for the key {key!r}")
        # Only the regular file inside the catalogue folder whose bytes were indexed (see read_indexed_file).
        data = await run_in_threadpool(
            partial(read_indexed_file, follow_links_outside=settings.follow_links_outside), record
        )
        cache = {"Cache-Control": "public, max-age=3600"}
        if w is not None:  # made from the bytes just checked, never by opening the path again
            path = await run_in_threadpool(thumbnails.thumbnail, data, w)
            return FileResponse(path, headers=cache)
        media_type = mimetypes.guess_type(record.uri)[0] or "application/octet-stream"
        return Response(data, media_type=media_type, headers=cache)

    @app.get(
        "/shared-uploads/{upload_id}",
        responses={status: {"model": ErrorResponse} for status in (400, 404, 410)}
        | {200: {"content": {"image/*": {}}}},
    )
    async def shared_upload(upload_id: str) -> Response:
        """The photo of a shared search, by the id a search answered (`upload`): 410 once it has expired."""
        api = await services.ready()
        data = await run_in_threadpool(api.shared_photo, upload_id)
        return Response(data, media_type=media_type_of(data), headers={"Cache-Control": "private, max-age=300"})

    @app.get("/health", response_model=HealthResponse, responses={503: {"model": ErrorResponse}})
    async def health() -> JSONResponse:
        status, payload = (await services.ready()).health()
        for problem_of in getattr(app.state, HEALTH_CHECKS, ()):  # e.g. a folder watcher that died or is stuck
            problem = problem_of()
            if problem:
                raise UnhealthyError(problem)
        return JSONResponse(payload, status_code=status)

    @app.get("/stats", response_model=StatsResponse, responses=_ERRORS, dependencies=needs_key)
    async def stats() -> JSONResponse:
        """How many images are indexed, per label, and with which model."""
        status, payload = await run_in_threadpool((await services.ready()).stats)
        return JSONResponse(payload, status_code=status)

    @app.post("/endpoints/{endpoint_name}/invocations", tags=["sagemaker"], responses=_ERRORS, dependencies=needs_key)
    async def sagemaker_invocations(endpoint_name: str, request: Request) -> Response:
        """SageMaker runtime's InvokeEndpoint, served by the in-process model: boto3's sagemaker-runtime client
        with `endpoint_url` pointed here lets the AWS index handler run unchanged on a laptop."""
        api = await services.ready()
        content_type = request.headers.get("content-type")
        try:
            body = await read_body_capped(request, body_limit(content_type, api.max_upload_bytes))
            payload = await run_in_threadpool(
                sagemaker_protocol.invoke,
                api.service.embedder,
                body,
                request.headers.get("content-type"),
                max_pixels=settings.max_pixels,
            )
            return Response(payload, media_type="application/json")
        except VisualSearchError as exc:  # unexpected errors go to the app's logged, detail-free 500 handler
            status, payload = sagemaker_protocol.error_response(exc)
            return Response(payload, status_code=status, media_type="application/json")

    @app.get("/config.json", include_in_schema=False)
    async def config() -> dict:
        # Served by the server itself so that a frontend/config.json written for AWS cannot redirect the local UI.
        return {"apiBase": "", "apiKeyRequired": bool(settings.api_key), "limits": client_limits(settings)}

    add_catalogue_routes(app, settings)  # GET/POST /items, DELETE /items/{key}, GET /duplicates
    add_adaptation_routes(app, settings, write_check=Depends(write_key_checker(settings.api_key)))
    folder = Path(frontend_dir) if frontend_dir else default_frontend_dir(settings)
    if folder.is_dir():
        app.mount("/", StaticFiles(directory=folder, html=True), name="frontend")
    app.openapi = lambda: _openapi_with_request_models(app)
    return app


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 8000, **create_app_options) -> None:
    """Serve until interrupted (blocking). Binds loopback by default; see README "Security model" before 0.0.0.0.
    Slow, idle and surplus connections are cut off as connection_guard.py says."""
    import uvicorn

    app = create_app(settings, **create_app_options)
    uvicorn.Server(server_config(app, host=host, port=port, log_level="info")).run()


def _search_request_body() -> dict:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "k": {"type": "integer", "minimum": 1, "maximum": 100},
                        "filters": {"type": "string", "description": "JSON, as in the JSON body"},
                        "crop": {"type": "string", "description": "JSON, as in the JSON body"},
                        "colour": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                }
            },
            "image/jpeg": binary,
            "image/png": binary,
            "image/webp": binary,
        },
    }


def _openapi_with_request_models(app: FastAPI) -> dict:
    """FastAPI's schema plus SearchRequest, which the /search route reads itself (it accepts three body types)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        request_schema = SearchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(request_schema.pop("$defs", {}))
        components["SearchRequest"] = request_schema
        app.openapi_schema = schema
    return app.openapi_schema
