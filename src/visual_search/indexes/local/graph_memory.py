"""Where a searching process keeps an HNSW graph's bytes: in transparent huge pages when the kernel offers them.

A graph search reads a few thousand scattered 1.3 KB codes (3,200 at 1M vectors, efSearch 96); with 4 KB pages
almost every one costs a TLB miss and a page-table walk. The same file read into a private anonymous map advised
MADV_HUGEPAGE (2 MB pages) and handed to faiss without a copy (ZeroCopyIOReader) searched in 0.72x the time
of a map of the file (docs/BENCHMARKS.md, issue 24). A map of the file cannot have them: the page cache of a
regular file is not collapsed into huge pages for a process (MADV_COLLAPSE answers EINVAL here).
What it costs: opening reads the whole file (0.6-0.8 s for a 1M graph, against 0.08 s to map it), and the pages
are the process's own instead of page cache shared between processes searching the same index.
"""

from __future__ import annotations

import functools
import mmap
import sys
from pathlib import Path

import numpy as np

_THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@functools.cache
def huge_pages_offered() -> bool:
    """Linux with transparent huge pages not switched off, and a faiss that can search a buffer it does not own."""
    if sys.platform != "linux" or not hasattr(mmap, "MADV_HUGEPAGE"):
        return False
    try:
        if "[never]" in _THP_SETTING.read_text():
            return False
    except OSError:
        return False
    import faiss  # optional (the `local` extra); only asked once a graph is being loaded

    return hasattr(faiss, "ZeroCopyIOReader")


def read_into_huge_pages(path: Path) -> np.ndarray:
    """The bytes of `path` as a uint8 array over a private anonymous map advised MADV_HUGEPAGE.

    The array keeps the map alive: whoever searches a faiss index made over it must hold the array too."""
    with open(path, "rb", buffering=0) as file:
        size = file.seek(0, 2)
        file.seek(0)
        if size == 0:
            raise OSError(f"{path} is empty")
        # MAP_PRIVATE: a shared anonymous map is shmem, which has its own huge page setting (off by default).
        memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        memory.madvise(mmap.MADV_HUGEPAGE)  # before the first touch, so the pages are huge as they fault in
        view = memoryview(memory)
        filled = 0
        while filled < size:  # one read() returns at most ~2 GB on Linux
            count = file.readinto(view[filled:])
            if not count:
                raise OSError(f"{path} ended after {filled} of {size} bytes (replaced while being read?)")
            filled += count
        view.release()
    return np.frombuffer(memory, dtype=np.uint8)
