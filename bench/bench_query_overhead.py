"""What a search costs beyond decode and model, measured in pairs so that a loaded machine's noise cancels.

Each round times, back to back in this process, SearchApi.handle_search of a 400 px upload (what the server's
`took_ms` covers: parsing, validation, decode, model, index search, response shaping) and its floor (decode +
the model step a query with colour weight 0 runs); the overhead is the median of the per-round differences, in
wall time (`took_ms`) and in the process's CPU time (all threads), which a loaded machine disturbs far less.
bench_server_latency.py measures the same through HTTP, but on a machine shared by many jobs its separate
medians differ by more than the overhead itself.

    .venv/bin/python bench/bench_query_overhead.py [--rounds 100] [--model lite2-fp32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_server_latency import PHOTO_400, build_index  # bench/: run as `python bench/<name>.py`
from machine import machine_facts

from visual_search.bootstrap import build_embedder, build_search_api, build_search_service
from visual_search.core.images import decode_image
from visual_search.core.settings import Settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite2-fp32")
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    facts = machine_facts()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as workdir:
        settings = Settings(index=str(Path(workdir) / "index"), model=args.model)
        embedder = build_embedder(settings)
        indexed = build_index(settings, embedder)
        service = build_search_service(settings, embedder=embedder)
        api = build_search_api(settings, service, url_for=lambda record: "/images/" + record.key)
        photo = PHOTO_400.read_bytes()
        size = embedder.spec.size_px

        def floor() -> None:
            image = decode_image(photo, min_size_px=size).image
            if hasattr(embedder, "embed_query"):
                embedder.embed_query(image, with_colour=False)
            else:
                embedder.embed([image])

        search_ms, floor_ms, took_ms, search_cpu_ms, floor_cpu_ms = [], [], [], [], []
        for number in range(args.rounds + 3):
            started, started_cpu = time.perf_counter(), time.process_time()
            status, body = api.handle_search(photo, "image/jpeg")
            searched = (time.perf_counter() - started) * 1000
            searched_cpu = (time.process_time() - started_cpu) * 1000
            started, started_cpu = time.perf_counter(), time.process_time()
            floor()
            floored = (time.perf_counter() - started) * 1000
            floored_cpu = (time.process_time() - started_cpu) * 1000
            if status != 200:
                raise SystemExit(f"search failed: {body}")
            if number >= 3:  # warm-up rounds
                search_ms.append(searched)
                floor_ms.append(floored)
                took_ms.append(body["took_ms"])
                search_cpu_ms.append(searched_cpu)
                floor_cpu_ms.append(floored_cpu)
    differences = [took - floored for took, floored in zip(took_ms, floor_ms)]
    # CPU time of the whole process (every thread: ONNX Runtime's pool, the photo keeper) is what the work costs
    # whatever else the machine runs; wall time on a loaded machine mostly measures the other jobs.
    cpu_differences = [search - floored for search, floored in zip(search_cpu_ms, floor_cpu_ms)]
    result = {
        "bench": "query_overhead",
        "model": embedder.model_id,
        "indexed": indexed,
        "machine": facts,
        "rounds": args.rounds,
        "took_ms_p50": round(statistics.median(took_ms), 2),
        "floor_ms_p50": round(statistics.median(floor_ms), 2),
        "overhead_ms_p50_of_pairs": round(statistics.median(differences), 2),
        "overhead_ms_p25_p75_of_pairs": [
            round(statistics.quantiles(differences, n=4)[0], 2),
            round(statistics.quantiles(differences, n=4)[2], 2),
        ],
        "cpu_ms_p50": {
            "search": round(statistics.median(search_cpu_ms), 2),
            "floor": round(statistics.median(floor_cpu_ms), 2),
            "overhead_of_pairs": round(statistics.median(cpu_differences), 2),
            "overhead_p25_p75_of_pairs": [
                round(statistics.quantiles(cpu_differences, n=4)[0], 2),
                round(statistics.quantiles(cpu_differences, n=4)[2], 2),
            ],
        },
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
