"""The local server's whole runtime: the search and catalogue APIs over one index, the one writer of that index,
the images it shows, the embedding route, and (with `serve --watch DIR`) the folder watcher writing through the
same writer. The server (server/app.py) builds it once, at startup, and closes it when it stops."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from visual_search.api.access import AccessKeys
from visual_search.api.adaptation_api import AdaptationApi
from visual_search.api.catalogue_api import CatalogueApi
from visual_search.api.client_limits import client_limits
from visual_search.api.results import ImageAnswer, RawAnswer
from visual_search.api.routes import Apis
from visual_search.bootstrap import (
    build_embedder,
    build_image_store,
    build_search_api,
    build_search_service,
    live_learning_policy,
    open_index,
    uploads_location,
)
from visual_search.core.colour import colour_dimension_of
from visual_search.core.errors import InvalidSettingError, VisualSearchError
from visual_search.core.lazy import Lazy
from visual_search.core.ports import AdaptableIndex, Embedder, VectorIndex
from visual_search.core.records import ImageRecord
from visual_search.core.settings import Settings
from visual_search.services.adaptation import QueryDomainLearner
from visual_search.services.catalogue import IndexingWriter
from visual_search.services.indexing import IndexingService
from visual_search.services.search import SearchService
from visual_search.services.watching import FolderWatcher, WatchReport

HOW_TO_SET_THE_WRITE_KEY = "start the server with VISUAL_SEARCH_WRITE_API_KEY set"


@dataclass
class ServerRuntime:
    apis: Apis
    keys: AccessKeys
    max_upload_bytes: int
    watcher: FolderWatcher | None = None
    learner: QueryDomainLearner | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> None:
        """Starts the folder watcher, if any (a daemon thread)."""
        if self.watcher is not None:
            self.watcher.start()

    def close(self) -> None:
        """Stops the watcher and live learning, and closes what this runtime opened (an index opened for writing brings its HNSW
        graph up to date and releases the writer lock); a search service handed in is left open."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.learner is not None:
            self.learner.freeze()
            self.learner.wait()  # a refit in progress finishes before the index closes
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def local_image_url(record: ImageRecord) -> str:
    return "/images/" + quote(record.key)


def access_keys(settings: Settings) -> AccessKeys:
    return AccessKeys(
        read=settings.effective_read_api_key,
        write=settings.effective_write_api_key,
        how_to_set_write_key=HOW_TO_SET_THE_WRITE_KEY,
    )


def build_indexing_writer(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    index: VectorIndex | None = None,
    watched_folder: str | Path | None = None,
) -> IndexingWriter:
    """The process's one writer. A given `index` opened read-only (the server's) is reopened for writing, which
    takes the embedded index's writer lock (IndexLockedError while `index` runs elsewhere)."""
    embedder = embedder or build_embedder(settings, bulk=True)
    if index is None or not index.writable:
        index = open_index(settings, writable=True, embedder=embedder)
    follow = settings.follow_links_outside
    owned = [build_image_store(str(watched_folder), follow_links_outside=follow)] if watched_folder else []
    return IndexingWriter(
        IndexingService(embedder, index, max_pixels=settings.max_pixels),
        build_image_store(uploads_location(settings), presigned_url_expiry_s=settings.presigned_url_expiry_s),
        owned_stores=owned,
    )


def build_server_runtime(
    settings: Settings,
    *,
    search_service: SearchService | None = None,
    embedder: Embedder | None = None,
    watched_folder: str | Path | None = None,
    labels_csv: str | Path | None = None,
    on_change: Callable[[WatchReport], None] | None = None,
    health_checks: Sequence[Callable[[], str | None]] = (),
) -> ServerRuntime:
    """The local server's runtime. `search_service` or `embedder` skip building them from settings (tests).
    With `watched_folder`, one index object serves both: the watcher and POST /items write through the writer,
    searches read it, and a dead or stuck watcher makes /health a 503 (as do `health_checks`, each answering
    why a part running beside the routes is unhealthy, or None). Without one, the writer opens the index for writing at the first add or delete, so the
    writer lock is taken only when an operator changes the catalogue."""
    closers: list[Callable[[], None]] = []
    watcher = None
    if watched_folder is not None:
        embedder = embedder or build_embedder(settings)
        built_writer = build_indexing_writer(settings, embedder=embedder, watched_folder=watched_folder)
        closers.append(built_writer.index.close)
        search_service = SearchService(embedder, built_writer.index, max_pixels=settings.max_pixels)
        watcher = build_folder_watcher(
            settings, watched_folder, built_writer, labels_csv=labels_csv, on_change=on_change
        )
        writer = Lazy(lambda: built_writer)
    else:
        if search_service is None:
            search_service = build_search_service(settings, embedder=embedder, create_if_missing=True)
            closers.append(search_service.index.close)
        service = search_service

        def open_writer() -> IndexingWriter:
            opened = build_indexing_writer(settings, embedder=service.embedder, index=service.index)
            if opened.index is not service.index:
                closers.append(opened.index.close)
            return opened

        writer = Lazy(open_writer)
    learner = _live_learner(settings, search_service, lambda: _adaptable(writer.get().index))
    search_api = build_search_api(settings, search_service, url_for=local_image_url, show_image=_local_images(settings))
    apis = Apis(
        search=search_api,
        catalogue=CatalogueApi(search_api, writer.get, max_pixels=settings.max_pixels),
        # Served by the server itself, so that a frontend/config.json written for AWS cannot redirect the local UI.
        ui_config={
            "apiBase": "",
            "apiKeyRequired": bool(settings.effective_read_api_key),
            "limits": client_limits(settings),
        },
        embedding=_InProcessEndpoint(search_service.embedder, settings.max_pixels),
        adaptation=AdaptationApi(learner),
        health_checks=[*health_checks, *([watcher.problem] if watcher is not None else [])],
    )
    return ServerRuntime(apis, access_keys(settings), settings.max_upload_bytes, watcher, learner, closers)


def _live_learner(
    settings: Settings, service: SearchService, writer_index: Callable[[], AdaptableIndex]
) -> QueryDomainLearner | None:
    """The learner of the query-domain centre from this server's own searches, attached to its search service;
    None unless VISUAL_SEARCH_ADAPT_LIVE_EVERY > 0. A refit writes through the process's one writer."""
    if settings.adapt_live_every <= 0:
        return None
    learner = QueryDomainLearner(
        live_learning_policy(settings),
        colour_dimension=colour_dimension_of(service.embedder.model_id),
        index=writer_index,
        background=True,
    )
    service.learner = learner
    return learner


def _adaptable(index: VectorIndex) -> AdaptableIndex:
    if not isinstance(index, AdaptableIndex):
        raise InvalidSettingError("live learning needs an index that can be centred (both built-in backends can)")
    return index


def build_folder_watcher(
    settings: Settings,
    folder: str | Path,
    writer: IndexingWriter,
    *,
    labels_csv: str | Path | None = None,
    on_change: Callable[[WatchReport], None] | None = None,
) -> FolderWatcher:
    """The watcher of `folder`, writing through `writer`, told of changes by the folder's native file events."""
    from visual_search.stores.folder_events import start_observer
    from visual_search.stores.local_folder import LocalFolderStore

    store = LocalFolderStore(folder, follow_links_outside=settings.follow_links_outside)
    return FolderWatcher(folder, store, writer, labels_csv=labels_csv, on_change=on_change, event_source=start_observer)


def _local_images(settings: Settings) -> Callable[[ImageRecord, int | None], ImageAnswer]:
    """GET /images/{key} on a laptop: the indexed file itself, or a cached JPEG thumbnail of width `w`."""
    from visual_search.stores.local_folder import read_indexed_file
    from visual_search.stores.thumbnail_cache import ThumbnailCache, default_thumbnail_dir

    thumbnails = ThumbnailCache(default_thumbnail_dir(settings.cache_dir), max_pixels=settings.max_pixels)

    def show(record: ImageRecord, width: int | None) -> ImageAnswer:
        # Only the regular file inside the catalogue folder whose bytes were indexed (see read_indexed_file).
        data = read_indexed_file(record, follow_links_outside=settings.follow_links_outside)
        if width is not None:  # made from the bytes just checked, never by opening the path again
            return ImageAnswer(path=str(thumbnails.thumbnail(data, width)))
        return ImageAnswer(data=data, media_type=mimetypes.guess_type(record.uri)[0] or "application/octet-stream")

    return show


class _InProcessEndpoint:
    """POST /endpoints/{name}/invocations answered by the in-process model, in SageMaker's own formats."""

    def __init__(self, embedder: Embedder, max_pixels: int):
        self.embedder = embedder
        self.max_pixels = max_pixels

    def invoke(self, body: bytes, content_type: str | None) -> RawAnswer:
        from visual_search.embedders.sagemaker import protocol

        try:
            return RawAnswer(200, protocol.invoke(self.embedder, body, content_type, max_pixels=self.max_pixels))
        except VisualSearchError as exc:  # unexpected errors go to the front end's logged, detail-free 500
            status, payload = protocol.error_response(exc)
            return RawAnswer(status, payload)
