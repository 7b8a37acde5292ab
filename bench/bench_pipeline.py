"""Whole-pipeline indexing throughput (read + hash + decode + preprocess + embed + index write) against the
model alone on the same photos, in the same run, for lite2-int8 and lite2-fp32.

    .venv/bin/python bench/bench_pipeline.py [--images DIR] [--count 600] [--rounds 3] [--models lite2-int8 lite2-fp32]

"Model only" is `embed_tensors` on float tensors made beforehand (decode, resize and normalisation all done):
the ONNX runs, R-MAC and the colour descriptor, in the pipeline's batch size. "Pipeline" is IndexingService
indexing the same files into a new local index: reading, hashing, decoding, resizing, normalising, the model and
the index writes. The ratio pipeline / model-only is the figure that matters on a noisy machine: both halves
share its noise; rounds alternate the two and the median ratio is reported.

Each phase's process CPU time per image, and how many cores it kept busy (CPU time / wall time), are reported
too. When model-only keeps every core busy (a quiet machine: bulk runs one ONNX stream per core), pipeline /
model-only cannot exceed model-only CPU / pipeline CPU, since the pipeline spends the model's CPU and the
preprocessing's on the same cores: that is `cpu_ceiling`, the best ratio perfect overlap could give. CPU per
image moves far less with other processes' load than images/s do.
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

import numpy as np
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

from visual_search.bootstrap import build_embedder  # noqa: E402
from visual_search.core.images import IMAGE_SUFFIXES, decode_image, to_model_input  # noqa: E402
from visual_search.core.settings import Settings  # noqa: E402
from visual_search.indexes.local.index import LocalIndex  # noqa: E402
from visual_search.services.indexing import IndexingService, IndexItem  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = next(
    (
        candidate / "shared" / "datasets" / "clothing" / "images"
        for candidate in (REPO.parent, REPO.parent.parent)  # /work/main or a worktree /work/wt/<name>
        if (candidate / "shared" / "datasets" / "clothing" / "images").is_dir()
    ),
    REPO.parent / "shared" / "datasets" / "clothing" / "images",
)
BATCH = 32


def prepared_tensors(embedder, paths: list[Path]) -> np.ndarray:
    return np.stack(
        [
            to_model_input(decode_image(p.read_bytes(), min_size_px=embedder.spec.size_px).image, embedder.spec)
            for p in paths
        ]
    )


def model_only(embedder, tensors: np.ndarray) -> tuple[float, float]:
    """(images/s, CPU ms per image) of embed_tensors alone, in the pipeline's batch size, on prepared tensors."""
    embedder.embed_tensors(tensors[:BATCH])
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(tensors), BATCH):
        embedder.embed_tensors(tensors[start : start + BATCH])
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - started
    return len(tensors) / wall, 1000 * cpu / len(tensors)


def pipeline(embedder, paths: list[Path]) -> tuple[float, float, int]:
    """(images/s, CPU ms per image, images indexed) of IndexingService into a new local index."""
    with tempfile.TemporaryDirectory() as scratch:
        index = LocalIndex(
            Path(scratch) / "index", model_id=embedder.model_id, dimension=embedder.dimension, writable=True
        )
        service = IndexingService(embedder, index, batch_size=BATCH)
        items = [IndexItem(p.name, str(p), p.read_bytes) for p in paths]
        cpu_started = time.process_time()
        report = service.index_items(items)
        cpu = time.process_time() - cpu_started
        index.close()
    return report.indexed / report.seconds, 1000 * cpu / max(report.indexed, 1), report.indexed


def cpu_flags() -> list[str]:
    """The CPU features that decide int8 speed (VNNI) and the vector width."""
    try:
        flags = next(
            line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines() if "flags" in line
        )
    except (OSError, StopIteration):
        return []
    return sorted(set(flags) & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--models", nargs="+", default=["lite2-int8", "lite2-fp32"])
    parser.add_argument("--rounds", type=int, default=1, help="model-only and pipeline alternated this many times")
    args = parser.parse_args()
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.count]
    results: dict = {
        "machine": machine_facts(images=len(paths), batch_size=BATCH, cpu_flags=cpu_flags()),
        "models": {},
    }
    for name in args.models:
        embedder = build_embedder(Settings(model=name), bulk=True)
        tensors = prepared_tensors(embedder, paths)
        rounds = []
        for _ in range(args.rounds):
            model_rate, model_cpu_ms = model_only(embedder, tensors)
            pipeline_rate, pipeline_cpu_ms, indexed = pipeline(embedder, paths)
            model_cores_busy = model_rate * model_cpu_ms / 1000
            rounds.append(
                {
                    "model_only_img_per_s": round(model_rate, 1),
                    "pipeline_img_per_s": round(pipeline_rate, 1),
                    "pipeline_over_model_only": round(pipeline_rate / model_rate, 3),
                    "model_only_cpu_ms_per_img": round(model_cpu_ms, 2),
                    "pipeline_cpu_ms_per_img": round(pipeline_cpu_ms, 2),
                    "model_only_cores_busy": round(model_cores_busy, 2),
                    "pipeline_cores_busy": round(pipeline_rate * pipeline_cpu_ms / 1000, 2),
                    "cpu_ceiling": round(model_cpu_ms / pipeline_cpu_ms, 3),
                    "indexed": indexed,
                }
            )
            print(
                f"{name}: model-only {model_rate:.1f} img/s ({model_cpu_ms:.1f} CPU ms/img), pipeline "
                f"{pipeline_rate:.1f} img/s ({pipeline_cpu_ms:.1f} CPU ms/img): {pipeline_rate / model_rate:.0%}; cores "
                f"busy {model_cores_busy:.2f} / {pipeline_rate * pipeline_cpu_ms / 1000:.2f}",
                file=sys.stderr,
            )
        del tensors
        results["models"][name] = {
            "pipeline_over_model_only": statistics.median(r["pipeline_over_model_only"] for r in rounds),
            "model_only_img_per_s": statistics.median(r["model_only_img_per_s"] for r in rounds),
            "pipeline_img_per_s": statistics.median(r["pipeline_img_per_s"] for r in rounds),
            "cpu_ms_per_img_model_only": statistics.median(r["model_only_cpu_ms_per_img"] for r in rounds),
            "cpu_ms_per_img_pipeline": statistics.median(r["pipeline_cpu_ms_per_img"] for r in rounds),
            "cpu_ceiling": statistics.median(r["cpu_ceiling"] for r in rounds),
            "rounds": rounds,
        }
    results["machine"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(
        "pipeline / model-only (median; CPU ceiling): "
        + ", ".join(
            f"{name} {m['pipeline_over_model_only']:.3f} ({m['cpu_ceiling']:.3f})"
            for name, m in results["models"].items()
        ),
        file=sys.stderr,
    )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
