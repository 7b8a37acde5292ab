"""How long the SageMaker endpoint's code takes to start from the self-contained model archive, against the same
start from this checkout's virtualenv (the baseline, measured in the same run).

    .venv/bin/python bench/bench_endpoint_start.py [--archive model.tar.gz] [--runs 3] [--out r.json]

Each run is a fresh interpreter doing what the container does before it answers /ping and the first request:
import inference.py (which puts the archive's code/lib first on the path), model_fn (ONNX Runtime session) and
one embedding of a demo photo. The archive run uses `python -I -S` (no site-packages; numpy and Pillow from a
folder standing in for the image's own); the baseline imports the same code with the venv's onnxruntime. The
serverless /ping limit is 3 minutes; before the archive carried its wheels, the container also had to
`pip install onnxruntime` from the internet first (not measured here: no network to PyPI from an endpoint
is the point).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from machine import machine_facts  # bench/machine.py: run as `python bench/<name>.py`

REPO_ROOT = Path(__file__).resolve().parent.parent
PHOTO = sorted((REPO_ROOT / "demo" / "catalogue" / "images").glob("*.jpg"))[0]

_START = """
import json, sys, time
started = time.perf_counter()
sys.path[:0] = sys.argv[1].split(":")
import inference, onnxruntime
imported = time.perf_counter()
model = inference.model_fn(sys.argv[2])
loaded = time.perf_counter()
answer = inference.output_fn(inference.predict_fn(inference.input_fn(open(sys.argv[3], "rb").read(),
                                                                     "application/x-image"), model), "*/*")
done = time.perf_counter()
print(json.dumps({"import_s": imported - started, "model_fn_s": loaded - imported, "first_embedding_s": done - loaded,
                  "onnxruntime": onnxruntime.__file__}))
"""


def build(archive: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_model_archive", REPO_ROOT / "model" / "build_model_archive.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    builder.build_archive("lite2-fp32", archive)


def image_packages(folder: Path) -> Path:
    """numpy and Pillow of this venv, alone in a folder: what the container image brings."""
    import numpy
    import PIL

    folder.mkdir()
    for package in (numpy, PIL):
        source = Path(package.__file__).parent
        for name in (source.name, f"{source.name.lower()}.libs", "pillow.libs"):
            if (source.parent / name).exists() and not (folder / name).exists():
                (folder / name).symlink_to(source.parent / name)
    return folder


def start(command: list[str], cwd: Path) -> dict:
    began = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=True)
    timings = json.loads(result.stdout.strip().splitlines()[-1])
    timings["process_s"] = time.perf_counter() - began
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="a built model.tar.gz (default: build one now)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        archive = args.archive or scratch / "model.tar.gz"
        if args.archive is None:
            build(archive)
        archive_mb = round(archive.stat().st_size / 1e6, 1)
        with tarfile.open(archive) as packed:
            packed.extractall(scratch / "model", filter="data")
        model, code = scratch / "model", scratch / "model" / "code"
        provided = image_packages(scratch / "image-site-packages")
        archive_run = [sys.executable, "-I", "-S", "-c", _START, f"{code}:{provided}", str(model), str(PHOTO)]
        # The baseline: the same code/inference.py, the venv's site-packages (its onnxruntime) instead of code/lib.
        (scratch / "baseline").mkdir()
        (scratch / "baseline" / "inference.py").write_text((code / "inference.py").read_text())
        baseline_run = [
            sys.executable,
            "-c",
            _START,
            f"{scratch / 'baseline'}:{REPO_ROOT / 'src'}",
            str(model),
            str(PHOTO),
        ]
        runs = {"archive": [], "baseline": []}
        for _ in range(args.runs):  # interleaved, so the shared machine's load affects both alike
            runs["baseline"].append(start(baseline_run, scratch))
            runs["archive"].append(start(archive_run, scratch))
    medians = {
        kind: {
            name: statistics.median(run[name] for run in results)
            for name in ("import_s", "model_fn_s", "first_embedding_s", "process_s")
        }
        for kind, results in runs.items()
    }
    report = {
        "machine": machine_facts(),
        "archive_mb": archive_mb,
        "median": medians,
        "archive_over_baseline_process": round(medians["archive"]["process_s"] / medians["baseline"]["process_s"], 2),
        "onnxruntime_loaded_from": {kind: results[0]["onnxruntime"] for kind, results in runs.items()},
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
