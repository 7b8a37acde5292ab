"""Peak and final resident memory while N threads decode small PNGs that expand to 64 MP each, with the
process-wide decoding budget (core/pixel_budget.py) and, as the baseline measured in the same run, with a budget
too large to ever wait. Each configuration runs in its own process so that their memory cannot mix.

    python bench/bench_decode_memory.py --threads 20 [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from machine import machine_facts

_UNBOUNDED = 1 << 50


def _memory_mib() -> dict[str, float]:
    values = {}
    for line in open("/proc/self/status"):
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(value.split()[0]) / 1024
    return values


def _one_configuration(threads: int, capacity: int) -> dict:
    """Runs inside the child process: decode `threads` bombs at once through the product's decode + preprocess."""
    from PIL import Image

    from visual_search.core import pixel_budget
    from visual_search.core.images import PreprocessSpec, decode_image, to_model_input

    buffer = io.BytesIO()
    Image.new("RGB", (8000, 8000), (180, 40, 40)).save(buffer, format="PNG", compress_level=9)
    bomb = buffer.getvalue()
    del buffer
    pixel_budget._return_free_memory()
    open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM: the bomb's making is not part of the figure
    baseline = _memory_mib()["VmRSS"]
    pixel_budget.DECODING.capacity_bytes = capacity
    pixel_budget.DECODING.wait_s = 600.0  # every image is decoded: the question is memory, not refusals

    def decode(_):
        decoded = decode_image(bomb, min_size_px=260)
        return to_model_input(decoded.image, PreprocessSpec()).shape

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(decode, range(threads)))
    seconds = time.perf_counter() - started
    time.sleep(1.0)
    memory = _memory_mib()
    return {
        "png_bytes": len(bomb),
        "baseline_mib": round(baseline, 1),
        "peak_mib": round(memory["VmHWM"], 1),
        "after_mib": round(memory["VmRSS"], 1),
        "seconds": round(seconds, 2),
    }


def _run_child(threads: int, capacity: int) -> dict:
    code = f"import bench_decode_memory as b, json; print(json.dumps(b._one_configuration({threads}, {capacity})))"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=sys.path[0] or "."
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from visual_search.core.pixel_budget import DEFAULT_BUDGET_BYTES

    budget = _run_child(args.threads, DEFAULT_BUDGET_BYTES)
    unbounded = _run_child(args.threads, _UNBOUNDED)
    report = {
        "machine": machine_facts(note="shared by several engineers' jobs while measured"),
        "threads": args.threads,
        "with_budget": budget,
        "without_budget": unbounded,
        "peak_ratio": round(budget["peak_mib"] / unbounded["peak_mib"], 3),
        "time_ratio": round(budget["seconds"] / unbounded["seconds"], 3),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name in ("with_budget", "without_budget"):
        row = report[name]
        print(
            f"{name:15} peak {row['peak_mib']:7.0f} MiB  after {row['after_mib']:6.0f} MiB  "
            f"(baseline {row['baseline_mib']:.0f})  {row['seconds']:.1f} s"
        )
    print(f"peak ratio {report['peak_ratio']}, time ratio {report['time_ratio']} ({report['machine']['date']})")


if __name__ == "__main__":
    main()
