"""The in-memory QueryAccumulator (core/ports.py): live learning's running sum and count for one process, the
local server's. The AWS functions share one in OpenSearch instead (indexes/opensearch/query_sums.py); both apply
the same rule to a batch (`accepted_share`), so a client's cap means the same on a laptop and on Lambda."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from visual_search.core.ports import ClientQueries, LearningState


def accepted_share(count: int, used: int, per_client: int) -> int:
    """How many of a client's `count` new queries fit what is left of its `per_client` share of the window,
    `used` of which it has used already. A client over its share adds the mean of its queries times this
    number, so its weight in the sum never exceeds `per_client` unit vectors per window."""
    return max(0, min(count, per_client - used))


class InMemoryQueryAccumulator:
    """A QueryAccumulator for one process: a lock around a LearningState and the window's per-client counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = LearningState(total=None)
        self._clients: dict[str, int] = {}

    def add(self, batch: Sequence[ClientQueries], per_client: int) -> int:
        with self._lock:
            state, accepted, refused = self._state, 0, 0
            total = state.total
            for item in batch:
                used = self._clients.get(item.client, 0)
                take = 0 if state.frozen else accepted_share(item.count, used, per_client)
                refused += item.count - take
                if take == 0:
                    continue
                part = np.asarray(item.total, dtype=np.float64) * (take / item.count)
                if total is not None and total.shape != part.shape:  # another model's vectors: start over
                    state, total, accepted = replace(state, count=0, window_accepted=0, window_refused=0), None, 0
                total = part if total is None else total + part
                self._clients[item.client] = used + take
                accepted += take
            self._state = replace(
                state,
                total=total,
                count=state.count + accepted,
                window_accepted=state.window_accepted + accepted,
                window_refused=state.window_refused + refused,
            )
            return accepted

    def state(self) -> LearningState:
        with self._lock:
            total = self._state.total
            return replace(self._state, total=None if total is None else total.copy())

    def set_frozen(self, frozen: bool) -> None:
        with self._lock:
            self._state = replace(self._state, frozen=frozen)

    def reset(self) -> None:
        with self._lock:
            self._state = replace(self._state, total=None, count=0, window_accepted=0, window_refused=0)
            self._clients = {}

    def request_refit(self) -> None:
        with self._lock:
            self._state = replace(self._state, refit_requested=True)

    def record_refit(self, counted: int, *, centre_id: str | None, step: float, error: str | None = None) -> None:
        with self._lock:
            state = self._state
            closed = replace(
                state, window_accepted=max(0, state.window_accepted - counted), window_refused=0, refit_requested=False
            )
            if error is None:
                closed = replace(
                    closed,
                    refits=state.refits + 1,
                    last_refit_at=time.time(),
                    last_step=step,
                    centre_id=centre_id,
                    last_error=None,
                )
            else:
                closed = replace(closed, last_error=error)
            self._state = closed
            self._clients = {}
