"""Fitting the index's query-domain centre (core/centre.py): from a set of shoppers' photos, or from live searches.

- `fit_from_photos`: embed unlabelled photos of the shoppers' side (their phone photos, not the catalogue's),
  take the mean of their appearance vectors, and make it the index's centre (the index re-projects itself).
- `QueryDomainLearner`: the same from the searches a server answers. It keeps only a running sum and count of
  query appearance vectors (never a photo, never a vector of one query once added), refits after
  `refit_every` new queries, and bounds what any burst can do: one client counts for at most
  `max_client_share` of a refit's queries (more are not added at all), and one refit moves the centre by at
  most `max_step` (L2), so steering the ranking takes many refits' worth of many clients' queries.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from visual_search.core.centre import Centre, appearance_units, fit_centre
from visual_search.core.colour import colour_dimension_of
from visual_search.core.errors import InvalidRequestError, VisualSearchError
from visual_search.core.images import DEFAULT_MAX_PIXELS, decode_image
from visual_search.core.ports import AdaptableIndex, Embedder

logger = logging.getLogger(__name__)

# Who is searching (the server sets it per request, e.g. the client's address); only counted, see observe().
current_client: contextvars.ContextVar[str | None] = contextvars.ContextVar("visual_search_client", default=None)

_EMBED_BATCH = 16


@dataclass(frozen=True)
class PhotoSource:
    """One photo to adapt on: a name for messages and a callable that reads its bytes."""

    name: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class AdaptationReport:
    photos_used: int
    skipped: list[tuple[str, str]]  # (name, reason) of photos that could not be read or decoded
    moved: float  # L2 distance between the old centre (the origin when there was none) and the new one
    centre: Centre


def embed_photos(
    embedder: Embedder, photos: Iterable[PhotoSource], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Signatures (N, dimension) of the photos that decode, and (name, reason) of those that do not."""
    rows: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    batch = []
    for photo in photos:
        try:
            batch.append(decode_image(photo.read(), min_size_px=embedder.spec.size_px, max_pixels=max_pixels).image)
        except (OSError, VisualSearchError) as error:
            skipped.append((photo.name, str(error)))
            continue
        if len(batch) == _EMBED_BATCH:
            rows.append(embedder.embed(batch))
            batch = []
    if batch:
        rows.append(embedder.embed(batch))
    vectors = np.concatenate(rows) if rows else np.zeros((0, embedder.dimension), np.float32)
    return vectors, skipped


def fit_from_photos(
    embedder: Embedder, index: AdaptableIndex, photos: Iterable[PhotoSource], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> AdaptationReport:
    """Fit the centre on these photos and make it the index's. InvalidRequestError when none could be used."""
    vectors, skipped = embed_photos(embedder, photos, max_pixels=max_pixels)
    if len(vectors) == 0:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped[:3])
        raise InvalidRequestError(
            f"none of the photos could be used to fit a centre{': ' + reasons if reasons else ''}"
        )
    centre = fit_centre(vectors, colour_dimension_of(embedder.model_id))
    previous = index.centre
    index.set_centre(centre)
    return AdaptationReport(len(vectors), skipped, centre.distance_to(previous), centre)


@dataclass(frozen=True)
class LearningPolicy:
    """How live searches move the centre. `refit_every` new (accepted) queries trigger a refit; `max_step` bounds
    how far (L2) one refit moves it; one client adds at most `max_client_share` of a refit's queries."""

    refit_every: int = 100
    max_step: float = 0.2  # a fitted centre's norm is ~0.5-0.7: three refits from none at the least
    max_client_share: float = 0.1

    def __post_init__(self) -> None:
        if self.refit_every < 1:
            raise InvalidRequestError(f"refit_every must be at least 1, not {self.refit_every}")
        if not self.max_step > 0:
            raise InvalidRequestError(f"max_step must be positive, not {self.max_step}")
        if not 0 < self.max_client_share <= 1:
            raise InvalidRequestError(f"max_client_share must be in (0, 1], not {self.max_client_share}")

    @property
    def per_client(self) -> int:
        return max(1, int(self.refit_every * self.max_client_share))


@dataclass
class _Window:
    """The queries accepted since the last refit: how many, and how many per (hashed) client."""

    accepted: int = 0
    refused: int = 0
    per_client: dict[str, int] = field(default_factory=dict)


class QueryDomainLearner:
    """Learns the centre from live query vectors. Thread-safe; refits run in a background thread.

    `index` is where the centre is read from and applied (`set_centre`): the server passes its one writer, so a
    refit takes the writer's place in the one-writer rule (see LocalIndex.set_centre). With `index=None` the
    learner only computes (`centre`), as the benchmark does.
    """

    def __init__(
        self,
        policy: LearningPolicy,
        *,
        colour_dimension: int,
        index: Callable[[], AdaptableIndex] | None = None,
        background: bool = False,
    ):
        self.policy = policy
        self.colour_dimension = colour_dimension
        self._index = index
        self._background = background
        self._lock = threading.Lock()
        self._refit_lock = threading.Lock()
        self._salt = os.urandom(16)  # client ids are hashed with a per-process salt: never stored as given
        self._sum: np.ndarray | None = None  # float64 running sum of unit appearance vectors
        self._count = 0
        self._window = _Window()
        self.frozen = False
        self.centre: Centre | None = None
        self.refits = 0
        self.last_refit_at: float | None = None
        self.last_step = 0.0
        self.last_error: str | None = None
        self._refit_thread: threading.Thread | None = None

    def observe(self, signature: np.ndarray, client: str | None = None) -> bool:
        """Count one query's appearance vector. False when it was not added (frozen, or the client's share of
        this refit is used up)."""
        appearance = appearance_units(signature, self.colour_dimension)[0].astype(np.float64)
        who = hashlib.sha256(self._salt + (client or "").encode()).hexdigest()[:16]
        with self._lock:
            if self.frozen:
                return False
            if self._window.per_client.get(who, 0) >= self.policy.per_client:
                self._window.refused += 1
                return False
            self._window.per_client[who] = self._window.per_client.get(who, 0) + 1
            self._sum = appearance if self._sum is None else np.add(self._sum, appearance)
            self._count += 1
            self._window.accepted += 1
            due = self._window.accepted >= self.policy.refit_every
            if due:
                self._window = _Window()
        if due:
            self._start_refit()
        return True

    def _start_refit(self) -> None:
        if not self._background:
            self.refit()
            return
        if self._refit_thread is not None and self._refit_thread.is_alive():
            return  # one at a time; the sums keep growing and the next window refits again
        self._refit_thread = threading.Thread(target=self.refit, name="centre-refit", daemon=True)
        self._refit_thread.start()

    def refit(self) -> Centre | None:
        """Move the centre towards the running mean by at most `max_step`, and apply it to the index."""
        with self._refit_lock:
            with self._lock:
                if self._sum is None or self._count == 0 or self.frozen:
                    return self.centre
                target = np.asarray(self._sum / self._count, dtype=np.float32)
                count = self._count
            try:
                index = self._index() if self._index is not None else None
                current = index.centre if index is not None else self.centre
                new = _bounded_step(current, target, self.policy.max_step, count)
                if index is not None:
                    index.set_centre(new)
                step = new.distance_to(current)
                self.last_error = None
            except Exception as error:  # noqa: BLE001 - a failed refit (index locked, node down) keeps the sums
                self.last_error = f"{type(error).__name__}: {error}"
                logger.warning("query-domain centre refit failed: %s", self.last_error)
                return self.centre
            with self._lock:
                self.centre, self.last_step = new, step
                self.refits += 1
                self.last_refit_at = time.time()
            return new

    def wait(self, timeout_s: float = 60.0) -> None:
        """Until a background refit in progress has finished (for tests and orderly shutdown)."""
        thread = self._refit_thread
        if thread is not None:
            thread.join(timeout_s)

    def freeze(self) -> None:
        with self._lock:
            self.frozen = True

    def unfreeze(self) -> None:
        with self._lock:
            self.frozen = False

    def reset(self) -> None:
        """Forget the running sum and count (the index keeps the centre it has; `visual-search adapt --clear`
        removes it)."""
        with self._lock:
            self._sum, self._count, self._window = None, 0, _Window()

    def state(self) -> dict:
        """What /stats shows: no vector, no client."""
        with self._lock:
            return {
                "frozen": self.frozen,
                "queries_counted": self._count,
                "queries_since_refit": self._window.accepted,
                "queries_refused_since_refit": self._window.refused,
                "refit_every": self.policy.refit_every,
                "max_step": self.policy.max_step,
                "max_client_share": self.policy.max_client_share,
                "refits": self.refits,
                "last_refit_at": self.last_refit_at,
                "last_step": round(self.last_step, 6),
                "centre_id": self.centre.centre_id if self.centre is not None else None,
                "last_error": self.last_error,
            }


def _bounded_step(current: Centre | None, target: np.ndarray, max_step: float, photos: int) -> Centre:
    """`target`, or the point `max_step` from `current` towards it when it is further (from the origin when
    there is no centre yet, so even the first refit cannot jump)."""
    start = current.vector.astype(np.float64) if current is not None else np.zeros_like(target, dtype=np.float64)
    delta = target.astype(np.float64) - start
    distance = float(np.linalg.norm(delta))
    moved = target if distance <= max_step else (start + delta * (max_step / distance)).astype(np.float32)
    return Centre(np.asarray(moved, dtype=np.float32), photos)
