"""The one place where adapters are chosen from Settings and wired into the services. Imports are lazy so that
a Lambda function, which has neither ONNX Runtime nor faiss, can build its services from the same code.

This module builds the parts (embedder, index, stores, services); each entry point's whole runtime, typed and
owning its close(), is built by one function of server_runtime.py (the local server, with or without a watched
folder), aws_runtime.py (the Lambda search function and the S3 event indexer) or cli_runtime.py (the CLI)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from visual_search.core.errors import InvalidSettingError, MissingSettingError
from visual_search.core.object_events import SHARED_UPLOADS_PREFIX  # the stack gives it a lifecycle expiry
from visual_search.core.ports import Embedder, ImageStore, VectorIndex
from visual_search.core.settings import Settings


def resolve_model(settings: Settings, name: str | None = None):
    """The ONNX model that `name` (default: settings.model) resolves to, built into the configured cache."""
    from visual_search.embedders.onnx.resolver import resolve_model as resolve

    calibration_dir = settings.calibration_dir or _bundled_calibration_photos()
    return resolve(
        name or settings.model,
        calibration_dir=Path(calibration_dir) if calibration_dir else None,
        cache_dir=model_cache_dir(settings),
    )


def model_cache_dir(settings: Settings) -> Path:
    from visual_search.embedders.onnx.resolver import model_cache_dir as cache_dir

    return cache_dir(settings.cache_dir)


def build_embedder(settings: Settings, *, bulk: bool = False, resize: str | None = None) -> Embedder:
    """The configured embedder. `bulk` tunes the in-process model for throughput (indexing) rather than for one
    query's latency: one thread per ONNX Runtime run and one run per core at once, which measured ~1.8x the
    throughput of one run spread over all cores (Lite2's many small depthwise layers parallelise poorly).
    `resize` overrides the in-process model's resize policy (center_crop, pad, squash): `eval --resize`."""
    if settings.embedder == "sagemaker":
        from visual_search.embedders.sagemaker.client import SageMakerEmbedder

        if not settings.sagemaker_endpoint:
            raise MissingSettingError("sagemaker_endpoint", "must name the endpoint when the embedder is sagemaker")
        from visual_search.embedders.onnx.resolver import builtin_spec

        # The endpoint serves the archive of settings.model; decode photos for that model's input size.
        return SageMakerEmbedder(
            settings.sagemaker_endpoint, budget_s=settings.sagemaker_budget_s, spec=builtin_spec(settings.model)
        )
    if settings.embedder != "local":
        raise InvalidSettingError(f"unknown embedder {settings.embedder!r}: use local or sagemaker")
    from visual_search.embedders.onnx.embedder import OnnxEmbedder

    cores = os.cpu_count() or 1
    model = resolve_model(settings)
    if resize:
        model = replace(model, spec=replace(model.spec, resize=resize))
    return OnnxEmbedder(
        model,
        intra_op_threads=(1 if bulk else cores) if settings.threads is None else settings.threads,
        streams=cores if bulk and settings.threads is None else 1,
    )


def _bundled_calibration_photos() -> Path | None:
    """The demo catalogue of a source checkout: real photos to calibrate the int8 model on, when none are set."""
    candidate = Path(__file__).resolve().parents[3] / "demo" / "catalogue" / "images"  # src/visual_search/bootstrap/
    return candidate if candidate.is_dir() else None


def open_index(
    settings: Settings, *, writable: bool, embedder: Embedder | None = None, create_if_missing: bool = False
) -> VectorIndex:
    """Open (or, when writable, create) the configured index. With an embedder, the index is bound to its
    model and refuses another; without one, it is opened read-only for whatever model made it.
    `create_if_missing` lets a reader (the server) start on an empty index instead of failing."""
    model_id = embedder.model_id if embedder else None
    dimension = embedder.dimension if embedder else None
    if settings.index_is_opensearch:
        from visual_search.indexes.opensearch.index import OpenSearchIndex

        url, options = _opensearch_options(settings.index)
        return OpenSearchIndex(
            url,
            model_id=model_id,
            dimension=dimension,
            auth=opensearch_auth(settings),
            create=writable or create_if_missing,
            **options,
        )
    from visual_search.indexes.local.index import LocalIndex

    if create_if_missing and not writable and embedder and not LocalIndex.exists(settings.index):
        LocalIndex(settings.index, model_id=model_id, dimension=dimension, writable=True).close()
    return LocalIndex(settings.index, model_id=model_id, dimension=dimension, writable=writable)


def opensearch_auth(settings: Settings):
    from visual_search.indexes.opensearch.connection import configured_auth

    return configured_auth(
        mode=settings.opensearch_auth,
        username=settings.opensearch_username,
        password=settings.opensearch_password,
        aws_service=settings.opensearch_aws_service,
        region=settings.aws_region,
    )


_OPENSEARCH_OPTIONS = {
    "engine": str,
    "m": int,
    "ef_construction": int,
    "ef_search": int,
    "mode": str,
    "compression_level": str,
    "encoder": str,
    "replicas": int,
}  # mode, compression_level, encoder: memory-saving storage; replicas: 0 on a one-node cluster (else yellow)


def _opensearch_options(location: str) -> tuple[str, dict]:
    """HNSW settings ride in the index URL's query: opensearch://host:9200/products?engine=faiss&m=32&ef_search=200;
    so does the replica count a new index is created with (?replicas=0 on a one-node domain)."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    parts = urlsplit(location)
    options = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _OPENSEARCH_OPTIONS:
            raise InvalidSettingError(
                f"unknown OpenSearch option {name!r} in the index URL: use {', '.join(_OPENSEARCH_OPTIONS)}"
            )
        try:
            options[name] = _OPENSEARCH_OPTIONS[name](value)
        except ValueError:
            raise InvalidSettingError(f"the OpenSearch option {name} must be a whole number, not {value!r}") from None
        if name == "replicas" and options[name] < 0:
            raise InvalidSettingError(f"the OpenSearch option replicas must be 0 or more, not {value!r}")
    return urlunsplit(parts._replace(query="")), options


def live_learning_policy(settings: Settings):
    """How live searches move the query-domain centre (services/adaptation.py), from the adapt_live_* settings."""
    from visual_search.services.adaptation import LearningPolicy

    return LearningPolicy(
        refit_every=settings.adapt_live_every,
        max_step=settings.adapt_live_max_step,
        max_client_share=settings.adapt_live_client_share,
    )


def build_query_accumulator(settings: Settings, *, create: bool):
    """The OpenSearch document that the AWS functions share live learning's sums in (beside the configured index).
    `create`: make its side index when missing (only a role that may write the products index may)."""
    from visual_search.indexes.opensearch.query_sums import OpenSearchQueryAccumulator

    if not settings.index_is_opensearch:
        raise InvalidSettingError(
            "live learning on the AWS functions keeps its sums in OpenSearch: VISUAL_SEARCH_INDEX must be an "
            "OpenSearch URL (or set VISUAL_SEARCH_ADAPT_LIVE_EVERY=0)"
        )
    url, _hnsw_options = _opensearch_options(settings.index)
    return OpenSearchQueryAccumulator(url, auth=opensearch_auth(settings), create=create)


def build_image_store(
    location: str, *, presigned_url_expiry_s: int = 300, follow_links_outside: bool = False
) -> ImageStore:
    if location.startswith("s3://"):
        from visual_search.stores.s3 import S3ImageStore

        return S3ImageStore.from_url(location, presigned_url_expiry_s=presigned_url_expiry_s)
    from visual_search.stores.local_folder import LocalFolderStore

    return LocalFolderStore(location, follow_links_outside=follow_links_outside)


def build_search_service(settings: Settings, *, embedder: Embedder | None = None, create_if_missing: bool = False):
    from visual_search.services.search import SearchService

    embedder = embedder or build_embedder(settings)
    index = open_index(settings, writable=False, embedder=embedder, create_if_missing=create_if_missing)
    return SearchService(embedder, index, max_pixels=settings.max_pixels)


def build_indexing_service(settings: Settings, *, embedder: Embedder | None = None, batch_size: int = 32):
    from visual_search.services.indexing import IndexingService

    embedder = embedder or build_embedder(settings, bulk=True)
    index = open_index(settings, writable=True, embedder=embedder)
    return IndexingService(embedder, index, batch_size=batch_size, max_pixels=settings.max_pixels)


def build_url_fetcher(settings: Settings):
    from visual_search.fetching.url_fetch import UrlFetcher

    return UrlFetcher(
        allowlist=settings.url_allowlist, timeout_s=settings.url_timeout_s, max_bytes=settings.max_upload_bytes
    )


def build_search_api(settings: Settings, service, *, url_for, show_image=None):
    """The transport-neutral search API that the local server and the Lambda search function both serve.
    `url_for(record)` says where a result's image is shown (a local route, or a presigned S3 URL);
    `show_image(record, width)` answers GET /images/{key}."""
    from visual_search.api.search_api import SearchApi

    return SearchApi(
        service,
        url_for=url_for,
        fetcher=build_url_fetcher(settings),
        max_upload_bytes=settings.max_upload_bytes,
        show_image=show_image,
        shared_uploads=build_shared_uploads(settings),
    )


def shared_uploads_location(settings: Settings) -> str:
    """Where shared uploads are kept: settings.shared_uploads_store; else, beside a bucket of images (AWS), that
    bucket under shared-uploads/ (outside the catalogue's prefix, and never indexed: its keys have no image
    suffix); else a folder beside the embedded index; else one in the per-user data directory."""
    if settings.shared_uploads_store:
        return settings.shared_uploads_store
    if settings.image_store and settings.image_store.startswith("s3://"):
        from urllib.parse import urlparse

        return f"s3://{urlparse(settings.image_store).netloc}/{SHARED_UPLOADS_PREFIX}"
    if not settings.index_is_opensearch:
        return str(Path(settings.index).with_name(Path(settings.index).name + "-shared-uploads"))
    from platformdirs import user_data_dir

    return str(Path(user_data_dir("visual-search")) / "shared-uploads")


def build_shared_uploads(settings: Settings):
    """The store of shared query photos, or None when settings.shared_uploads is off."""
    if not settings.shared_uploads:
        return None
    from visual_search.services.shared_uploads import SharedUploads

    location = shared_uploads_location(settings)
    if location.startswith("s3://"):
        from urllib.parse import urlparse

        from visual_search.stores.s3 import S3ImageStore

        parsed = urlparse(location)
        # Keys are full object keys in an S3 store, so the prefix goes into the keys, not into the store.
        store: ImageStore = S3ImageStore(parsed.netloc, presigned_url_expiry_s=settings.presigned_url_expiry_s)
        key_prefix = parsed.path.strip("/") + "/" if parsed.path.strip("/") else ""
    else:
        from visual_search.stores.local_folder import LocalFolderStore

        store, key_prefix = LocalFolderStore(location, url_prefix="/shared-uploads/"), ""
    return SharedUploads(
        store,
        key_prefix=key_prefix,
        max_bytes=settings.shared_uploads_max_bytes,
        max_age_s=settings.shared_uploads_max_age_s,
    )


def uploads_location(settings: Settings) -> str:
    """Where images added through POST /items are stored: VISUAL_SEARCH_IMAGE_STORE (a folder, or the bucket on
    AWS), else a folder beside the embedded index (`<index>-uploads`), else one in the per-user data directory."""
    if settings.image_store:
        return settings.image_store
    if not settings.index_is_opensearch:
        return str(Path(settings.index).with_name(Path(settings.index).name + "-uploads"))
    from platformdirs import user_data_dir

    return str(Path(user_data_dir("visual-search")) / "uploads")
