"""Model-only embedding throughput of lite2-fp32 and lite2-int8 on pre-decoded real photos.

    .venv/bin/python bench/bench_embedding.py [--images DIR] [--calibration-dir DIR] [--seconds 10] [--out r.json]

Decoding and preprocessing happen once, before timing, so the figures are the model's alone. Three settings:
single stream (1 thread, batch 1: one shopper's query), all cores (every core in one run, batch 16) and
N streams (batch 16 split into one chunk per core, each run single-threaded at the same time: bulk indexing).
Besides wall-clock images/s it reports images per CPU-second and the load average, because on a shared
machine other processes steal cores: `cpu_img_per_s x threads` estimates what an idle machine would do.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = Path("/work/shared/datasets/clothing/images")
DEMO_IMAGES = REPO_ROOT / "demo" / "catalogue" / "images"


def load_tensors(folder: Path, count: int, spec) -> np.ndarray:
    from visual_search.core.images import IMAGE_SUFFIXES, decode_image, to_model_input

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[-count:]
    if not paths:
        raise SystemExit(f"no images in {folder}")
    return np.stack([to_model_input(decode_image(p.read_bytes(), min_size_px=spec.size_px).image, spec) for p in paths])


def measure(embedder, tensors: np.ndarray, batch_size: int, seconds: float) -> dict:
    embedder.embed_tensors(tensors[:batch_size])  # warm-up: session creation and first-run allocations
    images = 0
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall_start < seconds:
        for start in range(0, len(tensors) - batch_size + 1, batch_size):
            embedder.embed_tensors(tensors[start : start + batch_size])
            images += batch_size
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    threads = embedder.intra_op_threads * embedder.streams
    return {
        "threads": threads,
        "batch_size": batch_size,
        "images": images,
        "img_per_s": round(images / wall, 1),
        "cpu_img_per_s": round(images / cpu, 1),
        "idle_estimate_img_per_s": round(images / cpu * threads, 1),  # assumes the threads would scale perfectly
        "load_average_1m": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES if DEFAULT_IMAGES.is_dir() else DEMO_IMAGES)
    parser.add_argument("--calibration-dir", type=Path, default=DEMO_IMAGES if DEMO_IMAGES.is_dir() else DEFAULT_IMAGES)
    parser.add_argument("--count", type=int, default=64, help="distinct photos cycled through")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed run per setting")
    parser.add_argument("--batch-size", type=int, default=16, help="batch of the all-cores setting")
    parser.add_argument("--models", default="lite2-fp32,lite2-int8")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import onnxruntime

    from visual_search.embedders.onnx.embedder import OnnxEmbedder
    from visual_search.embedders.onnx.resolver import resolve_model

    facts = machine_facts(onnxruntime=onnxruntime.__version__)
    results = []
    for name in args.models.split(","):
        model = resolve_model(name, calibration_dir=args.calibration_dir)
        tensors = load_tensors(args.images, args.count, model.spec)
        cores = os.cpu_count() or 1
        settings = (
            ("single stream", 1, 1, 1),
            ("all cores", cores, args.batch_size, 1),
            (f"{cores} streams", 1, args.batch_size, cores),
        )
        for setting, threads, batch, streams in settings:
            embedder = OnnxEmbedder(model, intra_op_threads=threads, batch_size=batch, streams=streams)
            results.append(
                {
                    "model": name,
                    "model_id": model.model_id,
                    "setting": setting,
                    **measure(embedder, tensors, batch, args.seconds),
                }
            )
    report = {"machine": facts, "results": results}
    print(json.dumps(report, indent=2))
    print(f"\n{facts['cpu']}, {facts['cores']} cores, onnxruntime {facts['onnxruntime']}, {facts['date']}")
    print(
        f"{'model':<11} {'setting':<14} {'thr':>3} {'batch':>5} {'img/s':>7} {'img/CPU-s':>9} {'idle est':>8} {'load':>5}"
    )
    for r in results:
        print(
            f"{r['model']:<11} {r['setting']:<14} {r['threads']:>3} {r['batch_size']:>5} {r['img_per_s']:>7} "
            f"{r['cpu_img_per_s']:>9} {r['idle_estimate_img_per_s']:>8} {r['load_average_1m']:>5.1f}"
        )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
