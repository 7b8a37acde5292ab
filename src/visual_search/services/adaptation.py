"""Fitting the index's query-domain centre (core/centre.py): from a set of shoppers' photos, or from live searches.

- `fit_from_photos`: embed unlabelled photos of the shoppers' side (their phone photos, not the catalogue's),
  take the mean of their appearance vectors, and make it the index's centre (the index re-projects itself).
- `QueryDomainLearner`: the same from the searches a server answers. It keeps only a running sum and count of
  query appearance vectors (never a photo, never a vector of one query once added), refits after
  `refit_every` new queries, and bounds what any burst can do: one client counts for at most
  `max_client_share` of a refit's queries (more are not added at all), and one refit moves the centre by at
  most `max_step` (L2), so steering the ranking takes many refits' worth of many clients' queries. The sums
  live in a QueryAccumulator: in memory on the local server, one shared OpenSearch document for the AWS
  functions, whose scheduled refit function runs the same `refit` (bootstrap/aws_runtime.py).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from visual_search.core.centre import Centre, appearance_units, fit_centre
from visual_search.core.colour import colour_dimension_of
from visual_search.core.errors import InvalidRequestError, VisualSearchError
from visual_search.core.images import DEFAULT_MAX_PIXELS, decode_image
from visual_search.core.ports import AdaptableIndex, ClientQueries, Embedder, QueryAccumulator
from visual_search.services.query_accumulator import InMemoryQueryAccumulator

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


class QueryDomainLearner:
    """Learns the centre from live query vectors, kept in a QueryAccumulator (core/ports.py). Thread-safe.

    Where it runs decides its parts. The local server: the in-memory accumulator, every query added at once, and
    a refit in a background thread once `refit_every` queries are in (`index` is its one writer, so a refit
    takes the writer's place in the one-writer rule, see LocalIndex.set_centre). The AWS search function:
    OpenSearch's shared accumulator, queries buffered per client and added by one update every `flush_every`
    queries or `flush_after_s` seconds, and `refits_here=False`, so `refit()` only asks the scheduled refit
    function (bootstrap/aws_runtime.py) to run it, outside the request path. With `index=None` a refit only
    computes (`centre`), as the benchmark does.

    Clients are hashed with `client_salt` (default: random per process); processes that share an accumulator
    share a salt, so a client's share of the window holds across them.
    """

    def __init__(
        self,
        policy: LearningPolicy,
        *,
        colour_dimension: int,
        index: Callable[[], AdaptableIndex] | None = None,
        background: bool = False,
        accumulator: QueryAccumulator | None = None,
        client_salt: bytes | None = None,
        flush_every: int = 1,
        flush_after_s: float | None = None,
        refits_here: bool = True,
        flush_beside_searches: bool = False,
    ):
        self.policy = policy
        self.colour_dimension = colour_dimension
        self.accumulator: QueryAccumulator = accumulator if accumulator is not None else InMemoryQueryAccumulator()
        self._index = index
        self._background = background
        self._refits_here = refits_here
        self._flush_every = max(1, flush_every)
        self._flush_after_s = flush_after_s
        self._flush_beside = flush_beside_searches and self._flush_every > 1
        self._flusher: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._refit_lock = threading.Lock()
        self._salt = client_salt if client_salt is not None else os.urandom(16)  # never stored as given
        self._buffer: dict[str, ClientQueries] = {}
        self._buffered = 0
        self._buffered_since: float | None = None
        self.centre: Centre | None = None
        self._refit_thread: threading.Thread | None = None

    def observe(self, signature: np.ndarray, client: str | None = None) -> bool:
        """Count one query's appearance vector. False when it was not added (frozen, or the client's share of
        this window is used up); a buffered query counts as added (its flush applies the same rules)."""
        appearance = appearance_units(signature, self.colour_dimension)[0].astype(np.float64)
        who = hashlib.sha256(self._salt + (client or "").encode()).hexdigest()[:16]
        query = ClientQueries(who, 1, appearance)
        if self._flush_every == 1:
            accepted = self.accumulator.add([query], self.policy.per_client) > 0
        else:
            accepted = True
            with self._lock:
                held = self._buffer.get(who)
                self._buffer[who] = (
                    query if held is None else ClientQueries(who, held.count + 1, held.total + appearance)
                )
                self._buffered += 1
                self._buffered_since = self._buffered_since or time.monotonic()
            if not self._flush_beside and self._flush_due():
                self.flush()
        if accepted and self._refits_here and self._window_full():
            self._start_refit()
        return accepted

    def start_due_flush(self) -> Future[int] | None:
        """With `flush_beside_searches` (the search function): when this instance's buffer is due, start sending it
        now, in a thread, so that the update runs beside the search about to start (its model and index calls)
        rather than after them. `finish_flush` joins it before the search answers: a Lambda instance is frozen
        once it has answered. The buffer so waits one search longer; `state()` sends it first."""
        if not self._flush_beside or not self._flush_due():
            return None
        if self._flusher is None:
            self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="learning-flush")
        return self._flusher.submit(self.flush)

    @staticmethod
    def finish_flush(flushing: Future[int] | None) -> None:
        if flushing is not None:
            flushing.result()  # flush() logs and swallows its own failures

    def _flush_due(self) -> bool:
        with self._lock:
            if self._buffered >= self._flush_every:
                return True
            since, after = self._buffered_since, self._flush_after_s
            return since is not None and after is not None and time.monotonic() - since >= after

    def flush(self) -> int:
        """Add the buffered queries to the accumulator (one update); returns how many it accepted. A failed
        flush drops them (logged): a few queries of learning lost, never a wrong centre."""
        with self._lock:
            batch, self._buffer, self._buffered, self._buffered_since = list(self._buffer.values()), {}, 0, None
        if not batch:
            return 0
        try:
            return self.accumulator.add(batch, self.policy.per_client)
        except Exception as error:  # noqa: BLE001 - learning must never fail a search
            logger.warning("live learning dropped %d queries: %s", sum(q.count for q in batch), error)
            return 0

    def _window_full(self) -> bool:
        return self.accumulator.state().window_accepted >= self.policy.refit_every

    def _start_refit(self) -> None:
        if not self._background:
            self.refit()
            return
        if self._refit_thread is not None and self._refit_thread.is_alive():
            return  # one at a time; the sums keep growing and the window stays full until it is recorded
        self._refit_thread = threading.Thread(target=self.refit, name="centre-refit", daemon=True)
        self._refit_thread.start()

    def refit_if_due(self) -> bool:
        """Refit when the window is full or an operator asked for one (the scheduled refit function's call)."""
        state = self.accumulator.state()
        if state.frozen or state.count == 0:
            return False
        if state.window_accepted >= self.policy.refit_every or state.refit_requested:
            self.refit()
            return True
        return False

    def refit(self) -> Centre | None:
        """Move the centre towards the running mean by at most `max_step`, and apply it to the index. Where
        refits run elsewhere (`refits_here=False`), ask for one instead."""
        self.flush()
        if not self._refits_here:
            self.accumulator.request_refit()
            return self.centre
        with self._refit_lock:
            state = self.accumulator.state()
            if state.total is None or state.count == 0 or state.frozen:
                return self.centre
            target = np.asarray(state.total / state.count, dtype=np.float32)
            try:
                index = self._index() if self._index is not None else None
                current = index.centre if index is not None else self.centre
                new = _bounded_step(current, target, self.policy.max_step, state.count)
                if index is not None:
                    index.set_centre(new)
                step = new.distance_to(current)
            except Exception as error:  # noqa: BLE001 - a failed refit (index locked, node down) keeps the sums
                message = f"{type(error).__name__}: {error}"
                logger.warning("query-domain centre refit failed: %s", message)
                self.accumulator.record_refit(state.window_accepted, centre_id=None, step=0.0, error=message)
                return self.centre
            self.accumulator.record_refit(state.window_accepted, centre_id=new.centre_id, step=step)
            self.centre = new
            return new

    @property
    def refits(self) -> int:
        return self.accumulator.state().refits

    def wait(self, timeout_s: float = 60.0) -> None:
        """Until a background refit in progress has finished (for tests and orderly shutdown)."""
        thread = self._refit_thread
        if thread is not None:
            thread.join(timeout_s)

    def freeze(self) -> None:
        self.flush()
        self.accumulator.set_frozen(True)

    def unfreeze(self) -> None:
        self.accumulator.set_frozen(False)

    def reset(self) -> None:
        """Forget the running sum and count (the index keeps the centre it has; `visual-search adapt --clear`
        removes it)."""
        with self._lock:
            self._buffer, self._buffered, self._buffered_since = {}, 0, None
        self.accumulator.reset()

    def state(self) -> dict:
        """What /stats shows: no vector, no client. A buffering instance first sends what it holds, so that an
        operator's read counts every query this instance has seen."""
        if self._flush_beside:
            self.flush()
        state = self.accumulator.state()
        with self._lock:
            buffered = self._buffered
        return {
            "frozen": state.frozen,
            "queries_counted": state.count,
            "queries_since_refit": state.window_accepted,
            "queries_refused_since_refit": state.window_refused,
            "queries_buffered_here": buffered,
            "refit_every": self.policy.refit_every,
            "max_step": self.policy.max_step,
            "max_client_share": self.policy.max_client_share,
            "refits": state.refits,
            "refit_requested": state.refit_requested,
            "last_refit_at": state.last_refit_at,
            "last_step": round(state.last_step, 6),
            "centre_id": state.centre_id,
            "last_error": state.last_error,
        }


def _bounded_step(current: Centre | None, target: np.ndarray, max_step: float, photos: int) -> Centre:
    """`target`, or the point `max_step` from `current` towards it when it is further (from the origin when
    there is no centre yet, so even the first refit cannot jump)."""
    start = current.vector.astype(np.float64) if current is not None else np.zeros_like(target, dtype=np.float64)
    delta = target.astype(np.float64) - start
    distance = float(np.linalg.norm(delta))
    moved = target if distance <= max_step else (start + delta * (max_step / distance)).astype(np.float32)
    return Centre(np.asarray(moved, dtype=np.float32), photos)
