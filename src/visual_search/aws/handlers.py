"""The Lambda entry points. Services are built on the first invocation of a container (not at import time, so
a cold start that fails reports its error per request) and reused by the invocations after it.

Configuration comes from VISUAL_SEARCH_* environment variables (see settings.py); SEARCH_SETTINGS and
INDEX_SETTINGS name the ones each function reads, and the template test checks that template.yaml sets them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from visual_search import bootstrap
from visual_search.api.catalogue_api import CatalogueApi
from visual_search.api.search_api import SearchApi, error_result
from visual_search.aws.api_key_parameter import with_parameter_keys
from visual_search.aws.catalogue_fields import CatalogueManifest
from visual_search.aws.http_events import handle_http_event, json_response
from visual_search.aws.index_metrics import reporting_failed_events
from visual_search.aws.invocation_deadline import seconds_left
from visual_search.aws.s3_event_indexer import EventOutcome, S3EventIndexer, SequencedIndex
from visual_search.aws.s3_events import parse_event
from visual_search.aws.s3_thumbnails import S3Thumbnails, result_url
from visual_search.core.deadline import deadline_after
from visual_search.core.errors import MissingSettingError, NotFoundError, VisualSearchError, error_body
from visual_search.core.keys import printable
from visual_search.core.lazy import Lazy
from visual_search.core.ports import ImageStore, VectorIndex
from visual_search.core.settings import Settings
from visual_search.services.catalogue import CatalogueWriter
from visual_search.services.indexing import IndexingService

logger = logging.getLogger(__name__)

SEARCH_SETTINGS = (
    "index",
    "embedder",
    "sagemaker_endpoint",
    "sagemaker_budget_s",
    "image_store",
    "max_upload_bytes",
    "url_allowlist",
    "url_timeout_s",
    "presigned_url_expiry_s",
    "read_api_key_parameter",
    "write_api_key_parameter",
)
INDEX_SETTINGS = ("index", "embedder", "sagemaker_endpoint", "sagemaker_budget_s", "image_store", "catalogue_manifest")
INDEX_BATCH_SIZE = 16  # images per endpoint request; the template caps an SQS batch below it, so one request


class IndexBatchFailedError(VisualSearchError):
    """Some objects of a direct (non-SQS) S3 invocation failed; raising makes Lambda retry the event and then
    send it to the function's on-failure destination."""

    code = "index_batch_failed"
    http_status = 500


@dataclass
class SearchRuntime:
    api: SearchApi
    index: VectorIndex
    image_url: Callable[[str], str]
    api_key: str | None = None  # the read key: None = the reading routes are open
    catalogue: CatalogueApi | None = None
    write_api_key: str | None = None  # None = the writing routes answer 403 writes_disabled


def build_search_runtime(settings: Settings, store: ImageStore) -> SearchRuntime:
    service = bootstrap.build_search_service(settings)
    # A result's image: its thumbnail when the index function wrote them (aws/s3_thumbnails.py), else the original.
    api = bootstrap.build_search_api(settings, url_for=result_url(store.url_for), service=service)
    # Writes go to the bucket only (index_on_put=False): the bucket's events index them, as for any upload.
    writer = Lazy(
        lambda: CatalogueWriter(
            IndexingService(service.embedder, service.index, max_pixels=settings.max_pixels),
            store,
            index_on_put=False,
            key_prefix=getattr(store, "prefix", ""),
        )
    )
    catalogue = CatalogueApi(api, writer.get, max_pixels=settings.max_pixels)
    keyed = with_parameter_keys(settings)  # unreadable parameters: the function refuses to start (503)
    return SearchRuntime(
        api=api,
        index=service.index,
        image_url=store.url_for,
        api_key=keyed.effective_read_api_key,
        catalogue=catalogue,
        write_api_key=keyed.effective_write_api_key,
    )


def build_event_indexer(
    settings: Settings, store_for_bucket: Callable[[str], ImageStore], thumbnails: S3Thumbnails | None = None
) -> S3EventIndexer:
    embedder = bootstrap.build_embedder(settings)
    index = bootstrap.open_index(settings, writable=True, embedder=embedder)
    sequenced = SequencedIndex(index)
    indexing = IndexingService(
        embedder, sequenced, batch_size=INDEX_BATCH_SIZE, workers=4, max_pixels=settings.max_pixels
    )
    return S3EventIndexer(
        indexing, sequenced, store_for_bucket, _manifests(settings, store_for_bucket), thumbnails=thumbnails
    )


def _manifests(settings: Settings, store_for_bucket: Callable[[str], ImageStore]):
    """manifest_for_bucket: each bucket's catalogue manifest (settings.catalogue_manifest), made once."""
    manifests: dict[str, CatalogueManifest] = {}
    lock = threading.Lock()

    def manifest_for_bucket(bucket: str) -> CatalogueManifest | None:
        if not settings.catalogue_manifest:
            return None
        with lock:
            if bucket not in manifests:
                manifests[bucket] = CatalogueManifest(store_for_bucket(bucket), settings.catalogue_manifest)
            return manifests[bucket]

    return manifest_for_bucket


def handle_index_event(event: dict, indexer: S3EventIndexer) -> tuple[dict, bool]:
    """(the handler's response, whether anything failed). For SQS the response is the partial batch failure
    report; for a direct S3 invocation it summarises the outcomes."""
    parsed = parse_event(event)
    try:
        outcomes = indexer.apply(parsed.objects)
    except VisualSearchError as exc:
        # The index or the bucket is unreachable: nothing was applied reliably, so every message is redelivered.
        logger.error("indexing failed for the whole batch: %s", exc.message)
        outcomes = [EventOutcome(obj, "failed", exc.message) for obj in parsed.objects]
    for outcome in outcomes:
        log = logger.error if outcome.failed or outcome.status == "skipped" else logger.info
        log(
            json.dumps(
                {
                    "key": outcome.event.key,
                    "event": outcome.event.event_name,
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "sequencer": outcome.event.sequencer,
                }
            )
        )
    failed = [outcome for outcome in outcomes if outcome.failed]
    if parsed.from_sqs:
        failed_ids = list(dict.fromkeys(parsed.unreadable_message_ids + [o.event.message_id for o in failed]))
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed_ids]}, bool(failed_ids)
    summary: dict[str, list] = {
        status: [o.event.key for o in outcomes if o.status == status]
        for status in ("indexed", "deleted", "kept", "stale", "duplicate", "ignored")
    }
    summary["skipped"] = [
        {"key": printable(o.event.key), "reason": o.reason} for o in outcomes if o.status == "skipped"
    ]
    summary["failed"] = [{"key": o.event.key, "reason": o.reason} for o in failed]
    return summary, bool(failed)


def s3_store_factory(settings: Settings) -> Callable[[str], ImageStore]:
    from visual_search.stores.s3 import S3ImageStore

    stores: dict[str, ImageStore] = {}
    lock = threading.Lock()

    def store_for_bucket(bucket: str) -> ImageStore:
        with lock:
            if bucket not in stores:
                shared_client = getattr(next(iter(stores.values())), "client", None) if stores else None
                stores[bucket] = S3ImageStore(
                    bucket, client=shared_client, presigned_url_expiry_s=settings.presigned_url_expiry_s
                )
            return stores[bucket]

    return store_for_bucket


def _configured_store(settings: Settings) -> ImageStore:
    if not settings.image_store:
        raise MissingSettingError("image_store", "must name the images bucket (s3://bucket)")
    return bootstrap.build_image_store(settings.image_store, presigned_url_expiry_s=settings.presigned_url_expiry_s)


def _search_runtime_from_env() -> SearchRuntime:
    settings = Settings.from_env()
    return build_search_runtime(settings, _configured_store(settings))


def _event_indexer_from_env() -> S3EventIndexer:
    settings = Settings.from_env()
    store_for_bucket = s3_store_factory(settings)
    thumbnails = S3Thumbnails(lambda bucket: store_for_bucket(bucket).client, max_pixels=settings.max_pixels)  # type: ignore[attr-defined]
    return build_event_indexer(settings, store_for_bucket, thumbnails)


_search_runtime = Lazy(_search_runtime_from_env)
_event_indexer = Lazy(_event_indexer_from_env)


def search_handler(event: dict, context=None) -> dict:
    """SearchFunction: HTTP API v2 event in, proxy response out. A cold start that fails (no index yet, a
    backend down) answers each request with a JSON error and is retried on the next one. Every backend call
    (the URL fetch, the endpoint, OpenSearch and their retries) ends before one deadline taken from the
    invocation's remaining time, so a slow backend is a JSON 503, never a function killed by its timeout."""
    with deadline_after(seconds_left(context)):
        return _search_response(event)


def _search_response(event: dict) -> dict:
    try:
        runtime: SearchRuntime = _search_runtime.get()
    except NotFoundError:
        logger.warning("the search index does not exist yet", exc_info=True)
        return json_response(
            503,
            error_body(
                "index_not_ready", "the catalogue is empty: upload images to the bucket and they will be indexed"
            ),
        )
    except Exception as exc:  # noqa: BLE001 - the API boundary: every failure becomes a JSON error
        return json_response(*error_result(exc))
    return handle_http_event(
        event,
        runtime.api,
        runtime.index,
        runtime.image_url,
        api_key=runtime.api_key,
        catalogue=runtime.catalogue,
        write_api_key=runtime.write_api_key,
    )


def index_handler(event: dict, context=None) -> dict:
    """IndexFunction: S3 notifications via SQS (partial batch failures) or directly (raises on failure). A
    function that cannot start (a missing setting, a backend down) logs why and fails every item of the batch.
    The number of failed events is written as a metric (aws/index_metrics.py): Lambda's Errors never sees them."""
    return reporting_failed_events(_index_response, event, context)


def _index_response(event: dict) -> dict:
    try:
        indexer = _event_indexer.get()
    except Exception as exc:  # noqa: BLE001 - logged and reported per item; SQS redelivers, then the DLQ
        status, body = error_result(exc)
        logger.error(json.dumps({"status": "failed", "batch": "whole", **body["error"]}))
        records = event.get("Records") if isinstance(event, dict) else None
        message_ids = [
            r["messageId"] for r in records or () if isinstance(r, dict) and r.get("eventSource") == "aws:sqs"
        ]
        if message_ids:
            return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in message_ids]}
        raise IndexBatchFailedError(body["error"]["message"]) from None
    response, failed = handle_index_event(event, indexer)
    if failed and "batchItemFailures" not in response:
        raise IndexBatchFailedError(f"some objects were not indexed: {json.dumps(response['failed'])}")
    return response


def reset_cached_services() -> None:
    """Forget the services built from the environment, so the next invocation rebuilds them."""
    _search_runtime.reset()
    _event_indexer.reset()
