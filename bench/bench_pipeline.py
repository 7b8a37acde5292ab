"""Whole-pipeline indexing throughput (read + hash + decode + preprocess + embed + index write) against the
model alone on the same photos, in the same run, for lite2-int8 and lite2-fp32.

    .venv/bin/python bench/bench_pipeline.py [--images DIR] [--count 600] [--models lite2-int8 lite2-fp32]

The ratio pipeline / model-only is the figure that matters on a noisy machine: both halves share its noise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

from visual_search.bootstrap import build_embedder  # noqa: E402
from visual_search.core.images import IMAGE_SUFFIXES, decode_image, to_model_input  # noqa: E402
from visual_search.core.settings import Settings  # noqa: E402
from visual_search.indexes.local.index import LocalIndex  # noqa: E402
from visual_search.services.indexing import IndexingService, IndexItem  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "datasets" / "clothing" / "images"
BATCH = 32


def model_only(embedder, paths: list[Path]) -> float:
    """Images/s of embed_tensors alone, in the pipeline's batch size, on tensors prepared beforehand."""
    tensors = np.stack(
        [
            to_model_input(decode_image(p.read_bytes(), min_size_px=embedder.spec.size_px).image, embedder.spec)
            for p in paths
        ]
    )
    embedder.embed_tensors(tensors[:BATCH])
    started = time.perf_counter()
    for start in range(0, len(tensors), BATCH):
        embedder.embed_tensors(tensors[start : start + BATCH])
    return len(tensors) / (time.perf_counter() - started)


def pipeline(embedder, paths: list[Path]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as scratch:
        index = LocalIndex(
            Path(scratch) / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True
        )
        service = IndexingService(embedder, index, batch_size=BATCH)
        items = [IndexItem(p.name, str(p), p.read_bytes) for p in paths]
        report = service.index_items(items)
        index.close()
    return report.indexed / report.seconds, report.indexed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--models", nargs="+", default=["lite2-int8", "lite2-fp32"])
    args = parser.parse_args()
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.count]
    results = {"machine": machine_facts(images=len(paths), batch_size=BATCH), "models": {}}
    for name in args.models:
        embedder = build_embedder(Settings(model=name), bulk=True)
        model_rate = model_only(embedder, paths)
        pipeline_rate, indexed = pipeline(embedder, paths)
        results["models"][name] = {
            "model_only_img_per_s": round(model_rate, 1),
            "pipeline_img_per_s": round(pipeline_rate, 1),
            "pipeline_over_model_only": round(pipeline_rate / model_rate, 3),
            "indexed": indexed,
        }
        print(
            f"{name}: model-only {model_rate:.1f} img/s, pipeline {pipeline_rate:.1f} img/s "
            f"({pipeline_rate / model_rate:.0%})",
            file=sys.stderr,
        )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
