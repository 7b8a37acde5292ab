"""SIGKILL a writer while it publishes a large index's graph and vector file, then check the index is intact.

    .venv/bin/python bench/scale_crash_check.py var/scale/index-1000000 var/scale/catalogue-1000000-1.npy

A child process adds 20,000 rows (committed), then runs optimize(), which writes a new float16 vector file and
a new HNSW graph (minutes at 1M); it is killed as soon as a half-written file appears. The parent then checks
that the index opens, holds every committed row, answers searches for the new rows, names only complete files,
and that the next writer removes the half-written one. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

_ADDED = 20_000
_CHILD = """
import sys, numpy as np
from visual_search.core.records import ImageRecord
from visual_search.indexes.local.index import LocalIndex
directory, catalogue_path, added = sys.argv[1], sys.argv[2], int(sys.argv[3])
catalogue = np.load(catalogue_path, mmap_mode="r")
index = LocalIndex(directory, writable=True)
rows = np.asarray(catalogue[:added])
index.upsert([ImageRecord(f"crash-{i}", "/c", "0" * 64, 1, 1, "crash") for i in range(added)], rows)
print("committed", flush=True)
index.optimize()
print("published", flush=True)
"""


def main() -> int:
    directory, catalogue_path = Path(sys.argv[1]), sys.argv[2]
    from visual_search.indexes.local.index import LocalIndex

    with LocalIndex(directory) as before:
        count_before = before.count()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory), catalogue_path, str(_ADDED)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "committed"
    started = time.perf_counter()
    while not any(path.name.endswith(".tmp") for path in directory.iterdir()):
        if child.poll() is not None:
            raise SystemExit("the child finished before a half-written file was seen; nothing was tested")
        time.sleep(0.05)
    time.sleep(1.0)  # well inside the write of a multi-GB file
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    killed_after_s = time.perf_counter() - started
    leftovers = sorted(path.name for path in directory.iterdir() if path.name.endswith(".tmp"))

    catalogue = np.load(catalogue_path, mmap_mode="r")
    opened = time.perf_counter()
    with LocalIndex(directory) as reader:
        hits = reader.search(np.asarray(catalogue[123]), 2)
        open_and_search_s = time.perf_counter() - opened
        report = {
            "rows_before": count_before,
            "rows_after": reader.count(),
            "committed_rows_added": _ADDED,
            "killed_after_s_of_publishing": round(killed_after_s, 1),
            "half_written_files_left": leftovers,
            "search_for_a_committed_new_row_finds_it": any(hit.record.key == "crash-123" for hit in hits),
            "open_and_first_search_s": round(open_and_search_s, 2),
        }
    LocalIndex(
        directory, writable=True
    ).close()  # a writer opening cleans up; 20k uncovered rows (<10%) do not trigger a rebuild
    report["half_written_files_after_next_writer"] = sorted(
        path.name for path in directory.iterdir() if path.name.endswith(".tmp")
    )
    report["intact"] = (
        report["rows_after"] == count_before + _ADDED
        and report["search_for_a_committed_new_row_finds_it"]
        and not report["half_written_files_after_next_writer"]
    )
    print(json.dumps(report))
    return 0 if report["intact"] else 1


if __name__ == "__main__":
    sys.exit(main())
