"""What live learning costs a search function instance on AWS: one flush of its buffered searches into the shared
OpenSearch sums (indexes/opensearch/query_sums.py), against the local node.

    nice -n 5 .venv/bin/python bench/bench_query_sums.py [--url opensearch://127.0.0.1:9200] [--rounds 40]
        [--dimension 1280] [--out result.json]

In interleaved rounds, in the same run (the node warm, the document at its real size: one sum of `--dimension`
numbers, the default model's appearance part):
- flush of 1 client: one scripted update adding one client's summed queries (what a flush of M searches from one
  shopper sends, whatever M);
- flush of 10 clients: one update adding 10 clients' sums (M searches from 10 shoppers); and the same with the
  sums sent at float64's full 17 digits instead of rounded to 8 decimals (what rounding saves);
- state read: GET of the document (what /stats and /adaptation add, and what the refit function reads);
- plain write (the baseline): indexing the same-sized document without a script.
Medians in ms, and each as a ratio to the plain write. Per search, a flush costs its time divided by M
(adapt_live_flush_every, 10 by default), paid by the one search that triggers it.

Then concurrency: `--threads` threads (instances) each send 10 one-client updates back to back to one document,
with the shipped retry_on_conflict and with a tenth of it: how many landed and how many were refused (409).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
import uuid

import numpy as np
from machine import machine_facts

from visual_search.core.ports import ClientQueries
from visual_search.indexes.opensearch import query_sums
from visual_search.indexes.opensearch.query_sums import OpenSearchQueryAccumulator


def concurrent_updates(url: str, threads: int, dimension: int, retry_on_conflict: int) -> dict:
    """`threads` instances each adding 10 one-client updates at once: how many landed, how many were refused."""
    shipped, query_sums.RETRY_ON_CONFLICT = query_sums.RETRY_ON_CONFLICT, retry_on_conflict
    sums = OpenSearchQueryAccumulator(f"{url}-conflicts-{retry_on_conflict}", create=True)
    refused: list[str] = []

    def instance(number: int) -> None:
        own = OpenSearchQueryAccumulator(f"{url}-conflicts-{retry_on_conflict}")
        for update in range(10):
            try:
                own.add([ClientQueries(f"{number}-{update}", 1, np.ones(dimension))], per_client=1)
            except Exception as error:  # noqa: BLE001 - counted
                refused.append(type(error).__name__)
        own.close()

    try:
        workers = [threading.Thread(target=instance, args=(n,)) for n in range(threads)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        seconds = time.perf_counter() - started
        landed = sums.state().count
    finally:
        query_sums.RETRY_ON_CONFLICT = shipped
        sums.drop()
        sums.close()
    return {
        "retry_on_conflict": retry_on_conflict,
        "sent": threads * 10,
        "landed": landed,
        "refused": len(refused),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("VISUAL_SEARCH_OPENSEARCH_URL", "opensearch://127.0.0.1:9200"))
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--dimension", type=int, default=1280)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--out")
    args = parser.parse_args()
    url = f"{args.url.rstrip('/')}/bench-sums-{uuid.uuid4().hex[:8]}"
    sums = OpenSearchQueryAccumulator(url, create=True)
    rng = np.random.default_rng(0)

    def batch(clients: int) -> list[ClientQueries]:
        return [ClientQueries(f"c{rng.integers(1 << 30)}", 10, rng.normal(size=args.dimension)) for _ in range(clients)]

    plain = {"sum": rng.normal(size=args.dimension).tolist(), "count": 1}

    def plain_write() -> None:
        sums._session.call(
            lambda client: client.index(index=sums.side_index, id="baseline", body=plain), what="baseline write"
        )

    rounded = query_sums._wire

    def unrounded_flush() -> None:  # the sums sent with float64's 17 digits, as before query_sums._wire rounded
        query_sums._wire = lambda total: np.asarray(total, dtype=np.float64).tolist()
        try:
            sums.add(batch(10), per_client=1 << 30)
        finally:
            query_sums._wire = rounded

    cases = {
        "flush of 1 client": lambda: sums.add(batch(1), per_client=1 << 30),
        "flush of 10 clients": lambda: sums.add(batch(10), per_client=1 << 30),
        "flush of 10 clients, unrounded": unrounded_flush,
        "state read": sums.state,
        "plain write (baseline)": plain_write,
    }
    try:
        for run in cases.values():  # warm-up: the script compiled, the document at its real size
            run()
        timings: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, run in cases.items():
                started = time.perf_counter()
                run()
                timings[name].append((time.perf_counter() - started) * 1000)
    finally:
        sums.drop()
        sums.close()
    baseline = statistics.median(timings["plain write (baseline)"])
    result = {
        "machine": machine_facts(load=os.getloadavg()),
        "dimension": args.dimension,
        "rounds": args.rounds,
        "median_ms": {name: round(statistics.median(values), 2) for name, values in timings.items()},
        "ratio_to_plain_write": {name: round(statistics.median(v) / baseline, 2) for name, v in timings.items()},
        "concurrency": [
            concurrent_updates(url, args.threads, args.dimension, retry)
            for retry in (query_sums.RETRY_ON_CONFLICT, max(1, query_sums.RETRY_ON_CONFLICT // 10))
        ],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as out:
            json.dump(result, out, indent=2)


if __name__ == "__main__":
    main()
