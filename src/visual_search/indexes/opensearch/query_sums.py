"""Live learning's QueryAccumulator (core/ports.py) for the AWS functions: one OpenSearch document per k-NN index,
in a small side index `<index>-adaptation`, changed only by painless scripted updates.

Lambda instances share no memory, so the running sum and count of query appearance vectors, the current refit
window's per-client counts (hashed ids only), the operator's controls and the refit bookkeeping live here. An
update runs its script on the document's primary shard, get-then-write under the document's version; a
concurrent update makes it run again (`retry_on_conflict`, then a resend after a random pause), so updates from
any number of instances all land, each once. (An update whose answer is lost to a timeout is sent again by the
session's retries and may count twice: a few queries of learning, still within each client's share.) The
per-client share is applied *inside* the script, so it holds across instances: the same rule as the in-memory
accumulator (services/query_accumulator.py; the contract test runs both).

The side index holds one small document (the sum is one float per appearance dimension) and is created with
`dynamic: false`, so the hashed client ids (keys of an object) never become mapping fields. Only a process that
may write the products index creates it (`create=True`: the refit function, at every run); the search
function, whose role may only update documents of it, waits for it (its flushes are dropped, logged, until then).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from visual_search.core.errors import InvalidRequestError, NotFoundError
from visual_search.core.ports import ClientQueries, LearningState
from visual_search.indexes.opensearch.connection import Auth, parse_opensearch_url
from visual_search.indexes.opensearch.session import DEFAULT_RETRY, OpenSearchSession, RetryPolicy

SIDE_INDEX_SUFFIX = "-adaptation"
# Concurrent updates of the one document each re-run on a version conflict, on the node; this bounds how often.
# 20 threads each sending 10 updates of a 1280-number sum back to back: with 5, half were refused (409); with 50,
# 1 in 200 at load 5 (docs/BENCHMARKS.md). One still refused is sent again after a random pause, a few times.
RETRY_ON_CONFLICT = 50
CONFLICT_ROUNDS = 4
_WIRE_DECIMALS = 8
_SIDE_INDEX = {
    "settings": {"number_of_shards": 1, "auto_expand_replicas": "0-1"},
    "mappings": {"dynamic": False, "properties": {"index": {"type": "keyword"}}},
}

_ADD = """
def s = ctx._source;
long accepted = 0; long refused = 0;
for (item in params.batch) {
  long used = s.clients.containsKey(item.client) ? ((Number) s.clients.get(item.client)).longValue() : 0L;
  long count = ((Number) item.count).longValue();
  long left = ((Number) params.per_client).longValue() - used;
  long take = (s.frozen == true || left <= 0) ? 0L : (count < left ? count : left);
  refused += count - take;
  if (take == 0) { continue; }
  if (s.sum == null) {
    def zeros = new ArrayList();
    for (int i = 0; i < item.total.size(); i++) { zeros.add(0.0); }
    s.sum = zeros;
  }
  if (s.sum.size() != item.total.size()) {
    // Vectors of another length: another model's. Its sums mean nothing to this one: start over.
    def zeros = new ArrayList();
    for (int i = 0; i < item.total.size(); i++) { zeros.add(0.0); }
    s.sum = zeros; s.count = 0; s.window_accepted = 0; s.window_refused = 0; accepted = 0;
  }
  double scale = (double) take / count;
  for (int i = 0; i < s.sum.size(); i++) {
    s.sum[i] = ((Number) s.sum[i]).doubleValue() + scale * ((Number) item.total[i]).doubleValue();
  }
  s.clients.put(item.client, used + take);
  accepted += take;
}
s.count = ((Number) s.count).longValue() + accepted;
s.window_accepted = ((Number) s.window_accepted).longValue() + accepted;
s.window_refused = ((Number) s.window_refused).longValue() + refused;
s.last_accepted = accepted;
"""
_SET_FROZEN = "ctx._source.frozen = params.frozen;"
_RESET = """
def s = ctx._source;
s.sum = null; s.count = 0; s.window_accepted = 0; s.window_refused = 0; s.clients = new HashMap();
"""
_REQUEST_REFIT = "ctx._source.refit_requested = true;"
_RECORD_REFIT = """
def s = ctx._source;
long left = ((Number) s.window_accepted).longValue() - ((Number) params.counted).longValue();
s.window_accepted = left > 0 ? left : 0L;
s.window_refused = 0; s.clients = new HashMap(); s.refit_requested = false;
if (params.error == null) {
  s.refits = ((Number) s.refits).longValue() + 1; s.last_refit_at = params.at; s.last_step = params.step;
  s.centre_id = params.centre_id; s.last_error = null;
} else {
  s.last_error = params.error;
}
"""


def side_index_name(index_name: str) -> str:
    return index_name + SIDE_INDEX_SUFFIX


class OpenSearchQueryAccumulator:
    """The shared accumulator of the k-NN index named by `url` (the products index's own URL)."""

    def __init__(
        self,
        url: str,
        *,
        auth: Auth = None,
        create: bool = False,
        timeout_s: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        verify_certs: bool = True,
    ):
        location = parse_opensearch_url(url, auth)
        self.index_name = location.index_name
        self.side_index = side_index_name(location.index_name)
        self._session = OpenSearchSession(location, timeout_s=timeout_s, verify_certs=verify_certs, retry=retry)
        self._ready = False
        if create:
            self.create()

    # -- QueryAccumulator --------------------------------------------------------------------------

    def add(self, batch: Sequence[ClientQueries], per_client: int) -> int:
        if not batch:
            return 0
        items = [{"client": item.client, "count": int(item.count), "total": _wire(item.total)} for item in batch]
        answer = self._update(_ADD, {"batch": items, "per_client": int(per_client)}, source="last_accepted")
        return int(((answer.get("get") or {}).get("_source") or {}).get("last_accepted", 0))

    def state(self) -> LearningState:
        from opensearchpy.exceptions import NotFoundError as OpenSearchNotFound

        try:
            answer = self._session.call(
                lambda client: client.get(index=self.side_index, id=self.index_name),
                what=f"read live learning's sums in {self.side_index!r}",
            )
        except OpenSearchNotFound:
            return LearningState(total=None)
        return _state_of(answer["_source"])

    def set_frozen(self, frozen: bool) -> None:
        self._update(_SET_FROZEN, {"frozen": bool(frozen)})

    def reset(self) -> None:
        self._update(_RESET, {})

    def request_refit(self) -> None:
        self._update(_REQUEST_REFIT, {})

    def record_refit(self, counted: int, *, centre_id: str | None, step: float, error: str | None = None) -> None:
        params = {"counted": int(counted), "centre_id": centre_id, "step": float(step), "at": time.time()}
        self._update(_RECORD_REFIT, {**params, "error": error})

    # -- lifecycle ---------------------------------------------------------------------------------

    def create(self) -> None:
        """Create the side index when missing (a creator racing this one is fine)."""
        from opensearchpy.exceptions import RequestError

        if self._exists():
            self._ready = True
            return
        try:
            self._session.call(
                lambda client: client.indices.create(index=self.side_index, body=_SIDE_INDEX),
                what=f"create {self.side_index!r}",
            )
        except InvalidRequestError as error:
            if not isinstance(error.__cause__, RequestError) or "already_exists" not in str(error.__cause__):
                raise
        self._ready = True

    def drop(self) -> None:
        """Delete the side index (every accumulator in it); a missing one is fine."""
        self._session.call(
            lambda client: client.indices.delete(index=self.side_index, params={"ignore_unavailable": "true"}),
            what=f"delete {self.side_index!r}",
        )
        self._ready = False

    def close(self) -> None:
        self._session.close()

    # -- internals ---------------------------------------------------------------------------------

    def _exists(self) -> bool:
        from opensearchpy.exceptions import NotFoundError as OpenSearchNotFound

        try:
            self._session.call(
                lambda client: client.indices.get_mapping(index=self.side_index),
                what=f"read the mapping of {self.side_index!r}",
            )
            return True
        except OpenSearchNotFound:
            return False

    def _update(self, script: str, params: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
        """One scripted update of this index's document, created first from an empty accumulator. Never creates
        the side index itself (OpenSearch would map it dynamically): NotFoundError until it exists."""
        if not self._ready:
            if not self._exists():
                raise NotFoundError(
                    f"live learning's side index {self.side_index!r} does not exist yet: the refit function "
                    "creates it at its first scheduled run"
                )
            self._ready = True
        body = {
            "script": {"source": script, "lang": "painless", "params": params},
            "scripted_upsert": True,
            "upsert": _empty_document(self.index_name),
        }
        query: dict[str, str] = {"retry_on_conflict": str(RETRY_ON_CONFLICT)}
        if source:
            query["_source"] = "true"
            query["_source_includes"] = source
        from opensearchpy.exceptions import ConflictError

        for attempt in range(CONFLICT_ROUNDS):
            try:
                return self._session.call(
                    lambda client: client.update(index=self.side_index, id=self.index_name, body=body, params=query),
                    what=f"update live learning's sums in {self.side_index!r}",
                )
            except InvalidRequestError as error:
                # Still conflicting after the node's own retries: nothing was written, so sending it again after
                # a random pause (which spreads the contenders out) counts it once.
                if not isinstance(error.__cause__, ConflictError) or attempt + 1 == CONFLICT_ROUNDS:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")


def _wire(total: np.ndarray) -> list[float]:
    """A sum as JSON numbers, rounded to 8 decimals: below float32's resolution of a component (a centre is
    float32), and about 40 % fewer bytes to encode, send and parse than float64's 17 digits (BENCHMARKS.md)."""
    return np.round(np.asarray(total, dtype=np.float64), _WIRE_DECIMALS).tolist()


def _empty_document(index_name: str) -> dict[str, Any]:
    return {
        "index": index_name,
        "sum": None,
        "count": 0,
        "window_accepted": 0,
        "window_refused": 0,
        "clients": {},
        "frozen": False,
        "refit_requested": False,
        "refits": 0,
        "last_refit_at": None,
        "last_step": 0.0,
        "centre_id": None,
        "last_error": None,
        "last_accepted": 0,
    }


def _state_of(source: dict[str, Any]) -> LearningState:
    total = source.get("sum")
    return LearningState(
        total=None if total is None else np.asarray(total, dtype=np.float64),
        count=int(source.get("count") or 0),
        window_accepted=int(source.get("window_accepted") or 0),
        window_refused=int(source.get("window_refused") or 0),
        frozen=bool(source.get("frozen")),
        refit_requested=bool(source.get("refit_requested")),
        refits=int(source.get("refits") or 0),
        last_refit_at=source.get("last_refit_at"),
        last_step=float(source.get("last_step") or 0.0),
        centre_id=source.get("centre_id"),
        last_error=source.get("last_error"),
    )
