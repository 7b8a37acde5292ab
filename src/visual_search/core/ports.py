"""The ports the services depend on; adapters implement them and bootstrap/ chooses which."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from visual_search.core.centre import Centre
from visual_search.core.images import CropBox, PreprocessSpec
from visual_search.core.records import ImageRecord, IndexStats, RecordPage, SearchFilters, SearchHit


@runtime_checkable
class Embedder(Protocol):
    """Turns decoded RGB images into unit-length vectors.

    `model_id` names the model and its weights (e.g. ``efficientnet-lite2-fp32:9656183e-b1``); an index refuses
    vectors of any other model_id. `embed` returns float32 of shape (len(images), dimension), each row with
    L2 norm 1, so the dot product of two rows is their cosine similarity. `spec` is the model's input contract;
    callers decode with `decode_image(min_size_px=spec.size_px)` so that every path feeds it the same pixels.
    """

    # Read-only to callers: an in-process model knows them at once, the SageMaker client asks its endpoint.
    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def spec(self) -> PreprocessSpec: ...

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...


@runtime_checkable
class TensorEmbedder(Embedder, Protocol):
    """An Embedder that also takes model-ready input, so that indexing can preprocess in its worker threads
    (decode and resize in parallel) and hand the model a ready batch."""

    def embed_tensors(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, size, size) made by `to_model_input(image, self.spec)` -> float32 (N, dimension), unit rows."""

    def embed_pixels(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 (size, size, 3) images made by `to_model_pixels(image, self.spec)` -> the same vectors as
        `embed_tensors` of their `to_model_input` tensors; the embedder normalises them where it runs the model."""


@runtime_checkable
class QueryEmbedder(Embedder, Protocol):
    """An Embedder that can embed one query photo computing only what the search will read."""

    def embed_query(self, image: Image.Image, *, with_colour: bool) -> np.ndarray:
        """float32 (dimension,) in the stored layout; with `with_colour=False` a colour descriptor part, if the
        model has one, is left zero (for a search with colour weight 0, which does not read it)."""


@runtime_checkable
class RegionProposer(Protocol):
    """Finds the objects in a photo (for "several items in one photo"), from the model's own activations.

    `propose_regions` returns at most `max_regions` (box, score) pairs, best first: the box as fractions of the
    (EXIF-oriented) image, the score the share of the object evidence the box holds (scores sum to at most 1).
    A photo always gets at least one region when max_regions >= 1. Implemented by the in-process ONNX embedder.
    """

    def propose_regions(self, image: Image.Image, max_regions: int = 4) -> list[tuple[CropBox, float]]: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Stores one vector and one ImageRecord per key, and finds the nearest vectors by cosine similarity.

    Raises ModelMismatchError when opened for, or given vectors of, another model or dimension. `writable` is
    False for an index opened only to read (an embedded index without its writer lock).
    """

    @property
    def writable(self) -> bool: ...

    def upsert(self, records: Sequence[ImageRecord], vectors: np.ndarray) -> None:
        """Insert or replace by key. `vectors` is float32 (len(records), dimension), unit rows."""

    def delete(self, keys: Sequence[str]) -> int:
        """Remove these keys; unknown keys are ignored. Returns how many were removed."""

    def get(self, keys: Sequence[str]) -> dict[str, ImageRecord]:
        """The records of the keys that exist."""

    def get_vector(self, key: str) -> np.ndarray | None:
        """The stored unit vector of `key`, float32 (dimension,), or None."""

    def search(
        self,
        vector: np.ndarray,
        k: int,
        filters: SearchFilters | None = None,
        exclude_keys: Sequence[str] = (),
    ) -> list[SearchHit]:
        """At most k hits ordered by descending score; fewer only when fewer records match the filters."""

    def count(self) -> int: ...

    def stats(self) -> IndexStats: ...

    def list_records(self, offset: int = 0, limit: int = 50, filters: SearchFilters | None = None) -> RecordPage:
        """The records the filters accept, ordered by key, from `offset` (0-based), at most `limit` of them."""

    def iter_vectors(self, batch_size: int = 1024) -> Iterator[tuple[list[str], np.ndarray]]:
        """Every (keys, float32 (len(keys), dimension) unit vectors) in batches: one pass over the whole catalogue
        for jobs such as the duplicate report, without a request per key."""

    def close(self) -> None:
        """Release files, locks and connections (the embedded index also brings its HNSW graph up to date)."""


@runtime_checkable
class AdaptableIndex(VectorIndex, Protocol):
    """A VectorIndex that searches in a space centred on the query domain (core/centre.py): it applies its
    centre to stored vectors and queries alike and keeps the raw vectors, so `set_centre` re-projects every
    stored vector without re-embedding. Both built-in backends are adaptable."""

    @property
    def centre(self) -> Centre | None:
        """The centre searches use now (None: none)."""

    @property
    def space_id(self) -> str:
        """The model id, plus the centre's hash when there is one (core/centre.centred_space_id)."""

    def set_centre(self, centre: Centre | None) -> object:
        """Search with `centre` from now on (None removes it); ModelMismatchError for another model's centre."""


@dataclass(frozen=True)
class ClientQueries:
    """Some searches of one client, as live learning adds them: the client's hashed id, how many queries, and the
    sum (float64) of their unit appearance vectors. Never a single query's vector once more than one is summed."""

    client: str
    count: int
    total: np.ndarray


@dataclass(frozen=True)
class LearningState:
    """What a query accumulator holds: the running sum and count since the last reset, the current refit window
    (queries accepted and refused since the last refit), the operator's controls and the refit bookkeeping."""

    total: np.ndarray | None  # float64 sum of unit appearance vectors; None before the first query
    count: int = 0
    window_accepted: int = 0
    window_refused: int = 0
    frozen: bool = False
    refit_requested: bool = False
    refits: int = 0
    last_refit_at: float | None = None
    last_step: float = 0.0
    centre_id: str | None = None
    last_error: str | None = None


@runtime_checkable
class QueryAccumulator(Protocol):
    """The running sum and count of query appearance vectors that live learning refits the centre from
    (services/adaptation.py), shared by every process that counts searches: in memory for the local server, one
    OpenSearch document for the AWS functions (instances that share no memory). Every change is atomic."""

    def add(self, batch: Sequence[ClientQueries], per_client: int) -> int:
        """Adds each client's queries while the client has used fewer than `per_client` of the current window
        (a client over its share adds the mean of its queries times what is left of it); nothing while frozen.
        Vectors of another length than the sum's (another model's) start the sums over. Returns how many queries
        were accepted."""

    def state(self) -> LearningState: ...

    def set_frozen(self, frozen: bool) -> None: ...

    def reset(self) -> None:
        """Forgets the sum, the count and the window (the controls and the refit history stay)."""

    def request_refit(self) -> None:
        """Marks a refit as wanted now, whatever the window holds (the refit runner does it)."""

    def record_refit(self, counted: int, *, centre_id: str | None, step: float, error: str | None = None) -> None:
        """Closes the window of the `counted` queries a refit (failed: `error`) was decided on; queries added
        meanwhile stay in the next window. A failed refit keeps the sums and the previous centre's bookkeeping."""


@dataclass(frozen=True)
class StoredObject:
    """An object's bytes and the user metadata stored with it (S3's x-amz-meta-*, names lower-cased; a folder
    has none)."""

    data: bytes
    metadata: Mapping[str, str] = field(default_factory=dict)
    modified: float | None = None  # when it was last written, in epoch seconds (None where a store cannot say)


@dataclass(frozen=True)
class ObjectInfo:
    """One object of a listing, without its bytes: key, size in bytes, last written (epoch seconds)."""

    key: str
    size: int
    modified: float


@runtime_checkable
class ImageStore(Protocol):
    """Where catalogue images live: a local folder or an S3 bucket. Keys use '/' separators.

    `key_prefix` is the part every key of this store starts with ("" for a folder; a bucket's images prefix,
    under which alone objects raise the indexing event). `skipped` holds (what, why) of the objects the last
    list_keys left out: names no key may have, files that are not regular files.
    """

    @property
    def key_prefix(self) -> str: ...

    @property
    def skipped(self) -> Sequence[tuple[str, str]]: ...

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys of the objects under `prefix` that have an image file suffix, in a stable order."""

    def read(self, key: str) -> bytes:
        """The object's bytes. Raises NotFoundError for an unknown key."""

    def uri(self, key: str) -> str:
        """Where the object lives, recorded in ImageRecord.uri (an absolute path or s3://bucket/key)."""

    def url_for(self, key: str) -> str:
        """An address a browser can load the image from (a server path, or a presigned URL)."""

    def put(self, key: str, data: bytes, *, metadata: Mapping[str, str] | None = None) -> None:
        """Write the object whole (a reader never sees it half-written), replacing any object of that key.
        `metadata` (label, product fields) travels with it where the store can hold it (S3 user metadata)."""

    def delete(self, key: str) -> bool:
        """Remove the object; False when there was none."""

    def read_object(self, key: str) -> StoredObject:
        """The object's bytes and user metadata in one request (S3: one GET). Raises NotFoundError."""

    def exists(self, key: str) -> bool:
        """Whether the object is there now, without reading it (S3: a HEAD request)."""

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix` (whatever its suffix, hidden and partial files excepted),
        with its size and time, for stores that are bounded by bytes and age (the shared uploads)."""


@runtime_checkable
class FolderStore(ImageStore, Protocol):
    """An ImageStore over a folder of files, whose changes can be told without reading them."""

    def stat(self, key: str) -> tuple[int, int] | None:
        """(size in bytes, mtime in ns) of the key's file, or None when there is no such regular file."""


class FolderObserver(Protocol):
    """A running watch of a folder's native file events (a thread); stop() then join() ends it."""

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


# (folder, on_key(key) for each image file an event names, on_folder_event() for folder events) -> a running
# observer. Events only say where to look: the watcher stats the files to decide what changed.
FolderEvents = Callable[[Path, Callable[[str], None], Callable[[], None]], FolderObserver]


class Thumbnails(Protocol):
    """Resized copies of a bucket's images, written when an image is indexed and removed with it."""

    def write(self, bucket: str, key: str, data: bytes) -> bool:
        """Makes and stores every size of the image `data`; False (logged) when any could not be."""

    def remove(self, bucket: str, keys: Iterable[str]) -> None:
        """Deletes every size of each key's thumbnails (missing ones are fine)."""
