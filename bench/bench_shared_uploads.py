"""What keeping uploaded photos for sharing (services/shared_uploads.py) costs a search, in one run.

An upload search through the transport-neutral API (SearchApi.handle_search: parse, decode, embed, search,
keep) with shared uploads on and off, in interleaved rounds over the same demo photos (each a new photo to the
store, so every "on" request writes one file), p50 and p95 of each and their ratio; then the store's sweep
(one listing, ages, oldest-first eviction) over 1,000 kept photos, the most a sweep meets at 256 MiB of
~260 KB photos, a keep that evicts, and 200 keeps into the full store (eviction goes down to 90 % of the limit,
so most keeps only write). Prints machine facts and one JSON document.

    .venv/bin/python bench/bench_shared_uploads.py [--requests 60] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

from visual_search.api.search_api import SearchApi
from visual_search.bootstrap import build_embedder
from visual_search.core.settings import Settings
from visual_search.indexes.local.index import LocalIndex
from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.services.search import SearchService
from visual_search.services.shared_uploads import SharedUploads
from visual_search.stores.local_folder import LocalFolderStore

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = REPO / "demo" / "catalogue" / "images"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60, help="upload searches per side (bounded by photos)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    photos = sorted(CATALOGUE.glob("*.jpg"))
    queries = [path.read_bytes() for path in photos[: min(args.requests, len(photos))]]
    work = Path(tempfile.mkdtemp(prefix="bench-shared-uploads-"))

    embedder = build_embedder(Settings())
    index = LocalIndex(work / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True)
    IndexingService(embedder, index, batch_size=16).index_items(
        [IndexItem(path.name, str(path), path.read_bytes) for path in photos]
    )
    service = SearchService(embedder, index)
    kept = SharedUploads(LocalFolderStore(work / "kept"), max_bytes=256 * 1024 * 1024, max_age_s=7 * 86400)
    apis = {
        "off": SearchApi(service, url_for=lambda r: r.key),
        "on": SearchApi(service, url_for=lambda r: r.key, shared_uploads=kept),
    }
    for api in apis.values():  # warm-up: sessions, caches
        api.handle_search(queries[0], "image/jpeg")

    times: dict[str, list[float]] = {"off": [], "on": []}
    for data in queries:  # interleaved, so load changes hit both sides alike
        for side in ("off", "on"):
            started = time.perf_counter()
            status, body = apis[side].handle_search(data, "image/jpeg")
            times[side].append((time.perf_counter() - started) * 1000)
            assert status == 200 and (body["upload"] is not None) == (side == "on"), body
    search = {side: {"p50_ms": percentile(v, 0.5), "p95_ms": percentile(v, 0.95)} for side, v in times.items()}

    # The sweep over a full store: 1,000 photos of ~260 KB listed, aged and (over the limit) evicted.
    photo_size = 260_000
    store = SharedUploads(LocalFolderStore(work / "full"), max_bytes=1000 * photo_size, max_age_s=7 * 86400)
    for n in range(1000):
        store.store.put(f"{n:064x}", bytes([n % 256]) * photo_size)
    started = time.perf_counter()
    report = store.sweep()
    sweep_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    store.keep(b"\x01new" * (photo_size // 4))  # over the limit: one listing, eviction down to 90 %
    evicting_keep_ms = (time.perf_counter() - started) * 1000
    steady = []  # a full store in use: most keeps only write, one in ~100 lists and evicts
    for n in range(200):
        started = time.perf_counter()
        store.keep(n.to_bytes(4, "big") * (photo_size // 4))
        steady.append((time.perf_counter() - started) * 1000)

    result = {
        "machine": machine_facts(),
        "requests_per_side": len(queries),
        "query_bytes_median": int(statistics.median(len(q) for q in queries)),
        "upload_search": search,
        "ratio_p50_on_to_off": round(search["on"]["p50_ms"] / search["off"]["p50_ms"], 3),
        "added_p50_ms": round(search["on"]["p50_ms"] - search["off"]["p50_ms"], 2),
        "sweep_1000_photos_ms": round(sweep_ms, 1),
        "sweep_kept_bytes": report.kept_bytes,
        "keep_that_evicts_ms": round(evicting_keep_ms, 1),
        "full_store_keep_ms": {
            "p50": percentile(steady, 0.5),
            "p95": percentile(steady, 0.95),
            "max": round(max(steady), 1),
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
