"""The AWS functions' whole runtimes: the search function's (the search and catalogue APIs over OpenSearch, the
SageMaker endpoint and the images bucket, writes going to the bucket), the event indexer's (S3 object events
applied to the index in sequencer order, labelled from object metadata and the catalogue manifest) and the
scheduled refit function's (live learning's query-domain centre, refitted outside the request path).

Live learning on AWS (off unless VISUAL_SEARCH_ADAPT_LIVE_EVERY > 0): every search function instance buffers its
searches' appearance vectors per hashed client and adds them to one shared OpenSearch document (indexes/
opensearch/query_sums.py) in one scripted update every adapt_live_flush_every queries or adapt_live_flush_after_s
seconds; the refit function, on its schedule, runs the same QueryDomainLearner.refit as the local server when the
window is full or an operator asked, and `set_centre` re-projects the index. Searchers read the new centre from
the index's `_meta` within CENTRE_TTL_S (indexes/opensearch/index.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from visual_search.api.access import AccessKeys
from visual_search.api.adaptation_api import AdaptationApi
from visual_search.api.catalogue_api import CatalogueApi
from visual_search.api.results import ImageAnswer
from visual_search.api.routes import Apis
from visual_search.bootstrap import (
    build_embedder,
    build_image_store,
    build_query_accumulator,
    build_search_api,
    build_search_service,
    live_learning_policy,
    open_index,
)
from visual_search.core.centre import split_space_id
from visual_search.core.colour import colour_dimension_of
from visual_search.core.errors import InvalidSettingError, MissingSettingError
from visual_search.core.object_events import EventOutcome, ObjectEvent
from visual_search.core.ports import AdaptableIndex, ImageStore, VectorIndex
from visual_search.core.records import ImageRecord
from visual_search.core.settings import Settings
from visual_search.services.adaptation import QueryDomainLearner
from visual_search.services.bucket_reindex import reindex_bucket
from visual_search.services.catalogue import BucketWriter
from visual_search.services.catalogue_fields import CatalogueManifest
from visual_search.services.indexing import IndexingService, IndexReport
from visual_search.services.s3_event_indexer import S3EventIndexer
from visual_search.services.search import SearchService
from visual_search.services.sequenced_index import SequencedIndex

INDEX_BATCH_SIZE = 16  # images per endpoint request; the template caps an SQS batch below it, so one request
HOW_TO_SET_THE_WRITE_KEY = "deploy the stack with WriteApiKeyParameterName naming an SSM SecureString"


@dataclass
class SearchFunctionRuntime:
    apis: Apis
    keys: AccessKeys
    index: VectorIndex
    learner: QueryDomainLearner | None = None

    def close(self) -> None:
        if self.learner is not None:
            self.learner.flush()  # what this instance buffered, when anything calls close before it goes
        self.index.close()


@dataclass
class RefitRuntime:
    """The scheduled refit function's: the shared sums, and the index the centre is applied to."""

    learner: QueryDomainLearner | None
    index: VectorIndex | None

    def run(self) -> dict:
        """Refit when due (the window is full, or an operator asked); the learning state after it."""
        if self.learner is None:
            return {"enabled": False}
        refitted = self.learner.refit_if_due()
        state = self.learner.state()
        # A refit that succeeds clears last_error: one set now is this run's.
        return {"enabled": True, "refitted": refitted, "failed": refitted and bool(state["last_error"]), **state}

    def close(self) -> None:
        if self.index is not None:
            self.index.close()


@dataclass
class EventIndexerRuntime:
    indexer: S3EventIndexer

    def apply(self, events: Sequence[ObjectEvent]) -> list[EventOutcome]:
        return self.indexer.apply(events)

    def reindex(self, bucket: str, prefix: str = "") -> IndexReport:
        """Every image under s3://bucket/prefix again (after a manifest or model change): services/bucket_reindex."""
        return reindex_bucket(self.indexer, bucket, prefix)

    def close(self) -> None:
        self.indexer.index.close()


def configured_store(settings: Settings) -> ImageStore:
    if not settings.image_store:
        raise MissingSettingError("image_store", "must name the images bucket (s3://bucket)")
    return build_image_store(settings.image_store, presigned_url_expiry_s=settings.presigned_url_expiry_s)


def build_search_function_runtime(
    settings: Settings,
    *,
    store: ImageStore | None = None,
    search_service: SearchService | None = None,
    image_url: Callable[[str], str] | None = None,
) -> SearchFunctionRuntime:
    """The search function's runtime. Its keys are settings' (on AWS read from their SSM parameters first,
    aws/api_key_parameter.py). `store` (default: settings.image_store), `search_service` and `image_url(key)`
    (where a browser loads an object; default: the store's presigned URL) stand in for the deployed ones in
    tests."""
    from visual_search.stores.s3_thumbnails import result_url

    store = store or configured_store(settings)
    service = search_service or build_search_service(settings)
    url = image_url or store.url_for

    def show_image(record: ImageRecord, _width: int | None) -> ImageAnswer:
        return ImageAnswer(redirect=url(record.key))

    # A result's image: its thumbnail when the index function wrote them (stores/s3_thumbnails.py), else the original.
    search_api = build_search_api(settings, service, url_for=result_url(url), show_image=show_image)
    # Writes go to the bucket only: the bucket's events index them, as for any upload.
    writer = BucketWriter(service.index, store)
    catalogue = CatalogueApi(search_api, lambda: writer, max_pixels=settings.max_pixels)
    keys = AccessKeys(
        read=settings.effective_read_api_key,
        write=settings.effective_write_api_key,
        how_to_set_write_key=HOW_TO_SET_THE_WRITE_KEY,
    )
    learner = _searches_learner(settings, service)
    apis = Apis(search=search_api, catalogue=catalogue, adaptation=AdaptationApi(learner), serves_files=False)
    return SearchFunctionRuntime(apis, keys, service.index, learner)


def _searches_learner(settings: Settings, service: SearchService) -> QueryDomainLearner | None:
    """The search function's half of live learning: it counts searches into the shared sums and never refits
    (its role cannot write the index, and a refit is no request's business); None when learning is off."""
    if settings.adapt_live_every <= 0:
        return None
    salt = settings.adapt_live_client_salt
    learner = QueryDomainLearner(
        live_learning_policy(settings),
        colour_dimension=colour_dimension_of(service.embedder.model_id),
        accumulator=build_query_accumulator(settings, create=False),
        client_salt=salt.encode() if salt else None,
        flush_every=settings.adapt_live_flush_every,
        flush_after_s=settings.adapt_live_flush_after_s,
        refits_here=False,
        flush_beside_searches=True,
    )
    service.learner = learner
    return learner


def build_refit_runtime(settings: Settings) -> RefitRuntime:
    """The refit function's runtime: the index opened for writing (for whatever model made it: no embedder, so no
    endpoint call) and the shared sums, whose side index it creates when missing."""
    if settings.adapt_live_every <= 0:
        return RefitRuntime(None, None)
    opened = open_index(settings, writable=True)
    if not isinstance(opened, AdaptableIndex):
        raise InvalidSettingError("live learning needs an index that can be centred (both built-in backends can)")
    index: AdaptableIndex = opened
    learner = QueryDomainLearner(
        live_learning_policy(settings),
        colour_dimension=colour_dimension_of(split_space_id(index.space_id)[0]),
        index=lambda: index,
        accumulator=build_query_accumulator(settings, create=True),
    )
    return RefitRuntime(learner, index)


def build_event_indexer_runtime(
    settings: Settings, *, store_for_bucket: Callable[[str], ImageStore] | None = None
) -> EventIndexerRuntime:
    """The index function's runtime. `store_for_bucket(name)` gives each bucket's ImageStore (default: one
    S3ImageStore per bucket sharing one client; a local folder for every bucket in `invoke --bucket-dir`)."""
    thumbnails = None
    if store_for_bucket is None:
        from visual_search.stores.s3_thumbnails import S3Thumbnails

        buckets = s3_store_factory(settings)
        thumbnails = S3Thumbnails(lambda bucket: buckets(bucket).client, max_pixels=settings.max_pixels)
        store_for_bucket = buckets
    embedder = build_embedder(settings)
    sequenced = SequencedIndex(open_index(settings, writable=True, embedder=embedder))
    indexing = IndexingService(
        embedder, sequenced, batch_size=INDEX_BATCH_SIZE, workers=4, max_pixels=settings.max_pixels
    )
    manifests = _manifests(settings, store_for_bucket)
    indexer = S3EventIndexer(indexing, sequenced, store_for_bucket, manifests, thumbnails=thumbnails)
    return EventIndexerRuntime(indexer)


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


def s3_store_factory(settings: Settings):
    """store_for_bucket(name): one S3ImageStore per bucket an event names, all sharing the first one's client."""
    from visual_search.stores.s3 import S3ImageStore

    stores: dict[str, S3ImageStore] = {}
    lock = threading.Lock()

    def store_for_bucket(bucket: str) -> S3ImageStore:
        with lock:
            if bucket not in stores:
                shared_client = next(iter(stores.values())).client if stores else None
                stores[bucket] = S3ImageStore(
                    bucket, client=shared_client, presigned_url_expiry_s=settings.presigned_url_expiry_s
                )
            return stores[bucket]

    return store_for_bucket
