"""ONNX Runtime (this project) against torch eager running the same Lite2 network on the same tensors, in one run.

Needs the optional dev extra (`pip install '.[torch-reference]'`, never part of make install or CI: torch can be
a multi-GB download); without it, it says so and exits 0.

    .venv/bin/python bench/bench_torch_eager.py [--seconds 10] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO / "demo" / "catalogue" / "images"


def images_per_s(run, batch: np.ndarray, seconds: float) -> float:
    run(batch)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run(batch)
        done += len(batch)
    return done / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    try:
        import efficientnet_lite_pytorch
        import torch
    except ImportError as exc:
        print(f"bench_torch_eager: skipped, the torch-reference extra is not installed ({exc})", file=sys.stderr)
        return 0
    from visual_search.core.images import decode_image, to_model_input
    from visual_search.embedders.lite2_builder.weights import default_weights_path
    from visual_search.embedders.onnx.embedder import OnnxEmbedder

    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    fp32 = OnnxEmbedder.from_name("lite2-fp32", intra_op_threads=1, streams=cores)
    int8 = OnnxEmbedder.from_name("lite2-int8", intra_op_threads=1, streams=cores, calibration_dir=PHOTOS)
    paths = sorted(PHOTOS.glob("*.jpg"))[: args.batch_size]
    batch = np.stack([to_model_input(decode_image(p.read_bytes(), min_size_px=260).image, fp32.spec) for p in paths])
    model = efficientnet_lite_pytorch.EfficientNet.from_pretrained(
        "efficientnet-lite2", weights_path=str(default_weights_path())
    ).eval()

    def torch_eager(array: np.ndarray) -> None:
        with torch.inference_mode():
            model.extract_features(torch.from_numpy(array)).mean(dim=(2, 3))

    rates = {
        "torch_eager_fp32": images_per_s(torch_eager, batch, args.seconds),
        "onnxruntime_fp32": images_per_s(fp32.embed_tensors, batch, args.seconds),
        "onnxruntime_int8": images_per_s(int8.embed_tensors, batch, args.seconds),
    }
    result = {
        "machine": machine_facts(torch=torch.__version__, batch_size=len(batch), torch_threads=cores),
        "img_per_s": {name: round(rate, 1) for name, rate in rates.items()},
        "fp32_over_torch": round(rates["onnxruntime_fp32"] / rates["torch_eager_fp32"], 2),
        "int8_over_torch": round(rates["onnxruntime_int8"] / rates["torch_eager_fp32"], 2),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
