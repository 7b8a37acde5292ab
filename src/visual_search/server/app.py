"""The local HTTP server: the route table of api/routes.py served by FastAPI, and the static web UI at /.

The runtime (model, index, writer, and the folder watcher of `serve --watch`) comes whole from
bootstrap/server_runtime.py: built once at startup (or at the first request when no lifespan runs), in a worker
thread since loading a model blocks, and closed when the server stops. OpenAPI docs are at /docs.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from visual_search import __version__
from visual_search.api.access import API_KEY_HEADER
from visual_search.api.results import ImageAnswer, RawAnswer
from visual_search.api.routes import (
    ROUTES,
    Answer,
    ApiRequest,
    Route,
    answer,
    error_responses,
    query_parameters,
    request_body_schema,
)
from visual_search.bootstrap.server_runtime import ServerRuntime, build_server_runtime
from visual_search.core.lazy import Lazy
from visual_search.core.settings import Settings
from visual_search.server.access import (
    add_cors,
    add_error_handlers,
    add_http_guard,
    add_security_headers,
    read_body_capped,
)
from visual_search.server.connection_guard import server_config
from visual_search.server.rate_limit import add_rate_limit, rate_limit_for_host

_IMAGE_CACHE = {"Cache-Control": "public, max-age=3600"}


def default_frontend_dir(settings: Settings) -> Path:
    """settings.frontend_dir (VISUAL_SEARCH_FRONTEND_DIR), else the source checkout's frontend/ folder."""
    return Path(settings.frontend_dir or Path(__file__).resolve().parents[3] / "frontend")


class _Runtime:
    """The one runtime of this app, built by bootstrap on first use and rebuilt after the server stops."""

    def __init__(self, build: Callable[[], ServerRuntime]):
        self._runtime = Lazy(build)

    async def ready(self) -> ServerRuntime:
        return self._runtime.get() if self._runtime.built else await run_in_threadpool(self._runtime.get)

    async def close(self) -> None:
        if self._runtime.built:
            await run_in_threadpool(self._runtime.get().close)
            self._runtime.reset()


def create_app(settings: Settings, *, frontend_dir: str | Path | None = None, **runtime_options: Any) -> FastAPI:
    """The server's ASGI app. `runtime_options` go to bootstrap.server_runtime.build_server_runtime:
    `search_service` or `embedder` (skip building them from settings), `watched_folder`, `labels_csv`,
    `on_change` (serve --watch)."""
    runtime = _Runtime(lambda: build_server_runtime(settings, **runtime_options))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        (await runtime.ready()).start()  # load the model before the first request, not during it
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(title="Visual product search", version=__version__, lifespan=lifespan)
    add_error_handlers(app)
    add_http_guard(app, settings.max_upload_bytes)
    add_rate_limit(app, settings)  # inside the headers and CORS, so a 429 carries them too
    add_security_headers(app)
    add_cors(app, settings.cors_origins)
    for route in ROUTES:
        _add_route(app, route, runtime)
    folder = Path(frontend_dir) if frontend_dir else default_frontend_dir(settings)
    if folder.is_dir():
        app.mount("/", StaticFiles(directory=folder, html=True), name="frontend")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 8000, **create_app_options: Any) -> None:
    """Serve until interrupted (blocking). Binds loopback by default; see README "Security model" before 0.0.0.0.
    Slow, idle and surplus connections are cut off as connection_guard.py says."""
    import uvicorn

    app = create_app(rate_limit_for_host(settings, host), **create_app_options)
    uvicorn.Server(server_config(app, host=host, port=port, log_level="info")).run()


def _add_route(app: FastAPI, route: Route, runtime: _Runtime) -> None:
    async def endpoint(request: Request) -> Response:
        running = await runtime.ready()
        running.keys.check(route.access, request.headers.get(API_KEY_HEADER))  # before reading any body
        content_type = request.headers.get("content-type")
        body = b""
        if route.body_limit is not None:
            body = await read_body_capped(request, route.body_limit(content_type, running.max_upload_bytes))
        client = request.client.host if request.client else None
        api_request = ApiRequest(body, content_type, dict(request.query_params), dict(request.path_params), client)
        return _response(await run_in_threadpool(answer, route, running.apis, api_request))

    extra: dict[str, Any] = {"parameters": query_parameters(route)}
    body_schema = request_body_schema(route, _schema_ref)
    if body_schema is not None:
        extra["requestBody"] = body_schema
    responses = error_responses(route)
    if route.response_model is None and route.path.startswith("/images/"):
        responses[200] = {"content": {"image/*": {}}}
    app.add_api_route(
        route.path,
        endpoint,
        methods=[route.method],
        response_model=route.response_model,
        status_code=route.status_code,
        responses=responses,
        description=route.summary,
        tags=list(route.tags) or None,
        include_in_schema=route.in_schema,
        operation_id=route.handler.__name__.lstrip("_"),
        openapi_extra=extra,
    )


def _response(result: Answer) -> Response:
    if isinstance(result, ImageAnswer):
        if result.redirect is not None:
            return RedirectResponse(result.redirect, status_code=302)
        cache = {"Cache-Control": result.cache_control} if result.cache_control else _IMAGE_CACHE
        if result.path is not None:
            return FileResponse(result.path, headers=cache)
        return Response(result.data, media_type=result.media_type, headers=cache)
    if isinstance(result, RawAnswer):
        return Response(result.body, status_code=result.status, media_type=result.media_type)
    status, payload = result
    return JSONResponse(payload, status_code=status)


_REQUEST_MODELS: dict[str, type[BaseModel]] = {}


def _schema_ref(model: type[BaseModel]) -> str:
    """Registers a request model (read by the route itself, not by FastAPI) for the document's components."""
    _REQUEST_MODELS[model.__name__] = model
    return f"#/components/schemas/{model.__name__}"


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema plus the request models the routes read themselves (they accept several body types)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _REQUEST_MODELS.items():
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[name] = model_schema
        app.openapi_schema = schema
    return app.openapi_schema
