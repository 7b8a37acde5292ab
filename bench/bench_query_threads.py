"""One query's model time under ONNX Runtime thread settings: intra-op threads 1, 2 (the cores here) and 8, with
the pool's idle threads spinning (ONNX Runtime's default) or sleeping (`session.intra_op.allow_spinning=0`).

Each setting has its own session; they take turns in rounds (so a noisy, shared machine slows them alike), and
each query is followed by the work a server does around the model (decode of the next photo, index search),
timed apart, so that spinning threads that steal the cores from it show. Reports per setting the p50 of the
model step, of the work around it, and the process CPU seconds per query (spinning burns CPU for nothing).

    .venv/bin/python bench/bench_query_threads.py [--rounds 15] [--per-round 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

from visual_search.bootstrap import resolve_model
from visual_search.core.images import decode_image
from visual_search.core.settings import Settings
from visual_search.embedders.onnx.embedder import OnnxEmbedder

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "tests" / "fixtures" / "photos" / "hat.jpg"
SETTINGS = {f"threads={t},spinning={'on' if s else 'off'}": (t, s) for t in (1, 2, 8) for s in (True, False)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite2-fp32")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=10)
    args = parser.parse_args()
    facts = machine_facts()
    model = resolve_model(Settings(model=args.model))
    embedders = {
        name: OnnxEmbedder(model, intra_op_threads=threads, spinning=spinning)
        for name, (threads, spinning) in SETTINGS.items()
    }
    photo = PHOTO.read_bytes()
    image = decode_image(photo, min_size_px=model.spec.size_px).image
    catalogue = np.random.default_rng(1).standard_normal((20_000, model.dimension)).astype(np.float32)
    for embedder in embedders.values():
        embedder.embed_query(image, with_colour=False)
    model_ms = {name: [] for name in embedders}
    around_ms = {name: [] for name in embedders}
    cpu_s = dict.fromkeys(embedders, 0.0)
    for _ in range(args.rounds):
        for name, embedder in embedders.items():
            cpu_started = time.process_time()
            for _ in range(args.per_round):
                started = time.perf_counter()
                vector = embedder.embed_query(image, with_colour=False)
                model_ms[name].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                decode_image(photo, min_size_px=model.spec.size_px)
                np.argpartition(-(catalogue @ vector), 10)[:10]  # an exact search of 20k vectors
                around_ms[name].append((time.perf_counter() - started) * 1000)
            cpu_s[name] += time.process_time() - cpu_started
    queries = args.rounds * args.per_round
    result = {
        "bench": "query_threads",
        "model": model.model_id,
        "machine": facts,
        "load_average_1m_at_end": round(__import__("os").getloadavg()[0], 2),
        "settings": {
            name: {
                "model_p50_ms": round(float(np.median(model_ms[name])), 2),
                "around_p50_ms": round(float(np.median(around_ms[name])), 2),
                "cpu_ms_per_query": round(1000 * cpu_s[name] / queries, 2),
            }
            for name in embedders
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
