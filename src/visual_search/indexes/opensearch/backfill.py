"""Loading a whole catalogue into OpenSearch fast: index settings for the duration of a backfill, and bulk
requests in parallel.

The levers, measured on the local single node (bench/bench_scale.py --backend opensearch, docs/BENCHMARKS.md):
- `refresh_interval: -1` while loading: no small segments cut every second (each gets its own HNSW graph,
  later merged, so refreshing costs graph builds twice over);
- `number_of_replicas: 0` while loading: a replica would build every graph again (on a one-node cluster it
  cannot be assigned anyway); both settings are restored afterwards, even when the load fails;
- several bulk requests in flight, so the node's write threads and the client's JSON encoding overlap;
- batches of a few hundred 1280-d documents (a request is ~10 MB of JSON per 500 documents);
- on 2.19+, the cluster setting `knn.algo_param.index_thread_qty` (default 1) lets each graph build use more
  threads; it is cluster-wide, so it is the operator's choice, not changed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from visual_search.indexes.opensearch.session import OpenSearchSession

BACKFILL_SETTINGS = {"refresh_interval": "-1", "number_of_replicas": "0"}


@contextmanager
def backfill_settings(session: OpenSearchSession, index_name: str) -> Iterator[None]:
    """Apply BACKFILL_SETTINGS to the index for the block, then put back what was there (a setting that was
    not set explicitly goes back to the node's default) and refresh once, so everything loaded is searchable."""
    answer = session.call(
        lambda client: client.indices.get_settings(index=index_name), what=f"read the settings of {index_name!r}"
    )
    current = next(iter(answer.values()))["settings"]["index"]
    previous = {name: current.get(name) for name in BACKFILL_SETTINGS}  # None resets to the default
    _put(session, index_name, BACKFILL_SETTINGS)
    try:
        yield
    finally:
        _put(session, index_name, previous)
        session.call(lambda client: client.indices.refresh(index=index_name), what=f"refresh {index_name!r}")


def _put(session: OpenSearchSession, index_name: str, settings: dict[str, Any]) -> None:
    session.call(
        lambda client: client.indices.put_settings(index=index_name, body={"index": settings}),
        what=f"change the settings of {index_name!r}",
    )


def parallel_bulk(
    send: Callable[[list[list[dict[str, Any]]]], Any], batches: Iterable[list[list[dict[str, Any]]]], *, threads: int
) -> int:
    """Call `send(batch)` for every batch with up to `threads` requests in flight (and at most twice that many
    batches built ahead, which bounds memory); returns the number of actions sent. The first failure is raised
    once the requests already in flight have finished."""
    sent = 0
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="opensearch-bulk") as pool:
        pending = []
        for batch in batches:
            pending.append(pool.submit(send, batch))
            sent += len(batch)
            if len(pending) >= 2 * threads:
                pending.pop(0).result()
        for future in pending:
            future.result()
    return sent
