"""The indexing use case: read, hash, decode and preprocess images in worker threads, embed them in batches, upsert.

Decoding overlaps inference (ONNX Runtime releases the GIL), unchanged images are skipped by content hash, and a
bad file is reported with its reason without stopping the batch.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from PIL import Image

from visual_search.core.catalogue_csv import CatalogueEntry
from visual_search.core.errors import VisualSearchError
from visual_search.core.hashing import sha256_hex
from visual_search.core.images import DEFAULT_MAX_PIXELS, decode_image, to_model_pixels
from visual_search.core.ports import Embedder, TensorEmbedder, VectorIndex
from visual_search.core.records import ImageRecord, Product


@dataclass(frozen=True)
class IndexItem:
    """One image to index: `read` returns its bytes when a worker gets to it."""

    key: str
    uri: str
    read: Callable[[], bytes]
    label: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    product: Product | None = None  # None: keep what the index already holds (an S3 event carries no product data)

    @classmethod
    def listed(cls, key: str, uri: str, read: Callable[[], bytes], entry: CatalogueEntry | None) -> IndexItem:
        """The item of a file with its catalogue CSV row (label, attributes, product), or unlabelled without one."""
        if entry is None:
            return cls(key, uri, read)
        return cls(key, uri, read, entry.label, entry.attributes, product=entry.product)


@dataclass(frozen=True)
class IndexFailure:
    key: str
    uri: str
    reason: str


@dataclass
class IndexReport:
    indexed: int = 0
    unchanged: int = 0
    failed: list[IndexFailure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Prepared:
    record: ImageRecord
    model_input: object  # uint8 (size, size, 3) model pixels, or a PIL image for embedders that preprocess themselves


_UNCHANGED = object()


class IndexingService:
    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        *,
        batch_size: int = 32,
        workers: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        self.embedder = embedder
        self.index = index
        self.batch_size = batch_size
        self.workers = workers or os.cpu_count() or 2
        self.max_pixels = max_pixels
        # Tensors can be prepared in the workers only if the embedder accepts them; otherwise it gets images.
        # Preprocessing in the workers pays only where the model takes ready tensors (the in-process one).
        self._tensor_embedder = embedder if isinstance(embedder, TensorEmbedder) else None
        self._embeds_tensors = self._tensor_embedder is not None
        # The in-process model gets the next batch while it finishes this one, so neither its slower stream nor
        # the index write leaves a core idle; a remote embedder gets one batch at a time, as its endpoint's
        # slots are sized for (services/indexing was measured with bench/bench_pipeline.py).
        self._batches_in_flight = 2 if self._embeds_tensors else 1

    def index_items(self, items: Iterable[IndexItem], *, progress: Callable[[int], None] | None = None) -> IndexReport:
        """Index every item; per-file failures go into the report. Batches are committed in order, each as soon as
        its vectors are back, so an interrupted run keeps what it finished and a re-run skips it. `progress(n)` is
        called as items are settled: a new image once its batch is committed, so what it counts survives a crash."""
        started = time.perf_counter()
        report = IndexReport()
        batch: list[_Prepared] = []
        settle = progress or (lambda count: None)
        in_flight: deque[tuple[list[_Prepared], Future]] = deque()
        with (
            ThreadPoolExecutor(self.workers, thread_name_prefix="index-prepare") as pool,
            ThreadPoolExecutor(self._batches_in_flight, thread_name_prefix="index-embed") as embedding,
        ):

            def commit_oldest() -> None:
                committed, vectors = in_flight.popleft()
                self._commit(committed, vectors, report)
                settle(len(committed))

            def embed_and_commit(batch: list[_Prepared]) -> None:
                in_flight.append((batch, embedding.submit(self._embed, batch)))
                while len(in_flight) >= self._batches_in_flight:
                    commit_oldest()

            for _item, outcome in self._prepare_in_order(items, pool):
                if outcome is _UNCHANGED:
                    report.unchanged += 1
                    settle(1)
                elif isinstance(outcome, IndexFailure):
                    report.failed.append(outcome)
                    settle(1)
                else:
                    if any(prepared.record.key == outcome.record.key for prepared in batch):
                        # The same key twice in a run: commit the first so the second replaces it, as a re-run would.
                        embed_and_commit(batch)
                        batch = []
                    batch.append(outcome)
                    if len(batch) >= self.batch_size:
                        embed_and_commit(batch)
                        batch = []
            if batch:
                embed_and_commit(batch)
            while in_flight:
                commit_oldest()
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, keys: Sequence[str]) -> int:
        return self.index.delete(list(keys))

    def _prepare_in_order(self, items: Iterable[IndexItem], pool: ThreadPoolExecutor) -> Iterator[tuple]:
        """Yields (item, _Prepared | IndexFailure | _UNCHANGED) in input order, keeping the workers busy ahead."""
        look_ahead = self.batch_size + 4 * self.workers
        pending: deque[tuple[IndexItem, Future]] = deque()
        for chunk in _chunks(items, look_ahead):
            known = self.index.get([item.key for item in chunk])
            for item in chunk:
                pending.append((item, pool.submit(self._prepare, item, known.get(item.key))))
            while len(pending) > look_ahead:
                item, future = pending.popleft()
                yield item, future.result()
        while pending:
            item, future = pending.popleft()
            yield item, future.result()

    def _prepare(self, item: IndexItem, known: ImageRecord | None):
        try:
            data = item.read()
            content_hash = sha256_hex(data)
            if (
                known is not None
                and known.content_hash == content_hash
                and known.uri == item.uri
                and known.label == item.label
                and all(known.attributes.get(name) == value for name, value in item.attributes.items())
                and (item.product is None or item.product == known.product)
            ):
                return _UNCHANGED
            decoded = decode_image(data, min_size_px=self.embedder.spec.size_px, max_pixels=self.max_pixels)
            model_input = to_model_pixels(decoded.image, self.embedder.spec) if self._embeds_tensors else decoded.image
        except VisualSearchError as exc:
            return IndexFailure(item.key, item.uri, exc.message)
        except OSError as exc:
            return IndexFailure(item.key, item.uri, f"cannot read the file: {exc.strerror or exc}")
        record = ImageRecord(
            key=item.key,
            uri=item.uri,
            content_hash=content_hash,
            width=decoded.width,
            height=decoded.height,
            label=item.label,
            # Attributes the item does not set are kept (e.g. the S3 event path's sequencer), as events do.
            attributes={**(known.attributes if known else {}), **item.attributes},
            indexed_at=time.time(),
            product=item.product if item.product is not None else (known.product if known else Product()),
        )
        return _Prepared(record, model_input)

    def _embed(self, batch: list[_Prepared]) -> np.ndarray:
        inputs = [prepared.model_input for prepared in batch]
        if self._tensor_embedder is not None:
            return self._tensor_embedder.embed_pixels(cast(list[np.ndarray], inputs))
        return self.embedder.embed(cast(list[Image.Image], inputs))

    def _commit(self, batch: list[_Prepared], vectors: Future, report: IndexReport) -> None:
        try:
            embedded = vectors.result()
        except VisualSearchError as exc:
            # A failing model service fails this batch's images, reported per key; the rest of the run goes on.
            report.failed.extend(IndexFailure(p.record.key, p.record.uri, exc.message) for p in batch)
            return
        self.index.upsert([prepared.record for prepared in batch], embedded)
        report.indexed += len(batch)


def _chunks(items: Iterable[IndexItem], size: int) -> Iterator[list[IndexItem]]:
    chunk: list[IndexItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
