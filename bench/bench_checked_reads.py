"""What the checked read of a catalogue file costs (issue 22): `read_catalogue_file` (resolve, O_NOFOLLOW open,
fstat, resolve again and compare inodes) against the plain non-blocking `read_regular_file` it replaced, and the
thumbnail route's extra hash of the bytes it is handed, on the demo catalogue's real photos, in one run.

    .venv/bin/python bench/bench_checked_reads.py [--rounds 7] [--out result.json]

Rounds alternate the two readers over every photo (page cache warm after the first round), so machine load hits
both alike; the figure is the ratio of the medians, per file and in absolute microseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_facts  # noqa: E402

from visual_search.core.hashing import sha256_hex  # noqa: E402
from visual_search.core.local_files import read_catalogue_file, read_regular_file  # noqa: E402

FOLDER = Path(__file__).resolve().parents[1] / "demo" / "catalogue" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out")
    args = parser.parse_args()
    photos = sorted(FOLDER.glob("*.jpg"))
    plain, checked, hashing = [], [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for path in photos:
            read_regular_file(path)
        plain.append((time.perf_counter() - started) / len(photos))
        started = time.perf_counter()
        for path in photos:
            read_catalogue_file(path, FOLDER)
        checked.append((time.perf_counter() - started) / len(photos))
        data = [path.read_bytes() for path in photos]
        started = time.perf_counter()
        for payload in data:
            sha256_hex(payload)
        hashing.append((time.perf_counter() - started) / len(photos))
    result = {
        "photos": len(photos),
        "mean_photo_kib": round(sum(p.stat().st_size for p in photos) / len(photos) / 1024, 1),
        "rounds": args.rounds,
        "plain_read_us": round(statistics.median(plain) * 1e6, 1),
        "checked_read_us": round(statistics.median(checked) * 1e6, 1),
        "checked_over_plain": round(statistics.median(checked) / statistics.median(plain), 2),
        "thumbnail_extra_hash_us": round(statistics.median(hashing) * 1e6, 1),
        "machine": machine_facts(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
