"""The catalogue routes of the local server: browse (GET /items), add (POST /items), delete (DELETE /items/{key})
and the near-duplicate report (GET /duplicates), a thin FastAPI layer over api/catalogue_api.py.

Reading routes sit behind the API key when one is set, like /search. The write routes always need it: with no
key configured at all they answer 403 `writes_disabled` (anyone on the network could change the catalogue),
with a key configured and a wrong or missing header 401 `unauthorized`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from visual_search import bootstrap
from visual_search.api.catalogue_api import CatalogueApi, check_write_key
from visual_search.api.catalogue_models import DeletedResponse, DuplicatesResponse, ItemsResponse
from visual_search.api.models import ErrorResponse, SearchResult
from visual_search.api.request_bodies import max_body_bytes
from visual_search.api.search_api import API_KEY_HEADER
from visual_search.core.errors import ImageTooLargeError
from visual_search.core.lazy import Lazy
from visual_search.core.settings import Settings
from visual_search.server.access import api_key_checker, read_body_capped

WRITER_STATE = "catalogue_writer"  # app.state attribute: a CatalogueWriter shared with a folder watcher, if any
_ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409, 413, 415, 422)}


def write_key_checker(expected: str | None):
    def check(request: Request) -> None:
        check_write_key(
            expected, request.headers.get(API_KEY_HEADER), how_to_set="start the server with VISUAL_SEARCH_API_KEY set"
        )

    return check


def add_catalogue_routes(app: FastAPI, settings: Settings) -> None:
    """Registers the routes on `app` (before its static mount). Uses app.state.services (the lazy SearchApi) and,
    when a folder watcher runs in this process, app.state.catalogue_writer, so there is one writer."""
    services = app.state.services
    reads = [Depends(api_key_checker(settings.api_key))]
    writes = [Depends(write_key_checker(settings.api_key))]

    opened: list = []  # an index the routes opened for writing themselves, closed when the server stops

    def new_writer():
        shared = getattr(app.state, WRITER_STATE, None)
        if shared is not None:
            return shared
        service = services.get().service
        built = bootstrap.build_catalogue_writer(settings, embedder=service.embedder, index=service.index)
        if built.index is not service.index:
            opened.append(built.index)
        return built

    writer = Lazy(new_writer)
    app.state.catalogue_writer_factory = writer.get  # the one writer, also for a refit of the centre
    _close_on_shutdown(app, opened)
    catalogue = Lazy(lambda: CatalogueApi(services.get(), writer.get, max_pixels=settings.max_pixels))

    async def api() -> CatalogueApi:
        await services.ready()  # loads the model in a worker thread the first time
        return catalogue.get()

    @app.get("/items", response_model=ItemsResponse, responses=_ERRORS, dependencies=reads, tags=["catalogue"])
    async def list_items(request: Request) -> JSONResponse:
        """A page of the catalogue ordered by key (`offset`, `limit` 1-500, `label`), its total and label counts."""
        handler = (await api()).list_items
        status, payload = await run_in_threadpool(handler, dict(request.query_params))
        return JSONResponse(payload, status_code=status)

    @app.post(
        "/items",
        status_code=201,
        response_model=SearchResult,
        responses=_ERRORS,
        dependencies=writes,
        tags=["catalogue"],
        openapi_extra={"requestBody": _add_item_body()},
    )
    async def add_item(request: Request) -> JSONResponse:
        """Store an image and index it: multipart `file`, optional `key` (default: its content hash), `label`,
        product fields (title, price, currency, product_url, brand) and `attributes` (a JSON object). 409 if the
        key is taken; the same size, pixel and type limits as /search."""
        catalogue = await api()
        limit = max_body_bytes(catalogue.search_api.max_upload_bytes)
        body = await read_body_capped(request, limit)
        if body is None:
            raise ImageTooLargeError(f"the request body is over the {limit:,}-byte limit")
        status, payload = await run_in_threadpool(catalogue.add_item, body, request.headers.get("content-type"))
        return JSONResponse(payload, status_code=status)

    @app.delete(
        "/items/{key:path}", response_model=DeletedResponse, responses=_ERRORS, dependencies=writes, tags=["catalogue"]
    )
    async def delete_item(key: str) -> JSONResponse:
        """Remove an item from the index, and its file when it lives in the uploads folder or a watched folder."""
        status, payload = await run_in_threadpool((await api()).delete_item, key)
        return JSONResponse(payload, status_code=status)

    @app.get(
        "/duplicates", response_model=DuplicatesResponse, responses=_ERRORS, dependencies=reads, tags=["catalogue"]
    )
    async def duplicates(request: Request) -> JSONResponse:
        """Groups of near-identical images (resized, recompressed, slightly cropped, mirrored); `threshold` 0.5-1."""
        status, payload = await run_in_threadpool((await api()).duplicates, dict(request.query_params))
        return JSONResponse(payload, status_code=status)


def _close_on_shutdown(app: FastAPI, indexes: list) -> None:
    """Wraps the app's lifespan so that an index opened for writing is closed (its HNSW graph brought up to date,
    the writer lock released) when the server stops, not only when the process exits."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running_app):
        async with inner(running_app) as state:
            yield state
        for index in indexes:
            await run_in_threadpool(index.close)

    app.router.lifespan_context = lifespan


def _add_item_body() -> dict:
    text = {"type": "string"}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "key": text,
                        "label": text,
                        "title": text,
                        "price": text,
                        "currency": text,
                        "product_url": text,
                        "brand": text,
                        "attributes": {"type": "string", "description": "a JSON object of text values"},
                    },
                }
            }
        },
    }
