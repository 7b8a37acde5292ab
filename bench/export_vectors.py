"""Exports an embedded index's vectors and labels (for bench_opensearch.py --vectors/--labels).

.venv/bin/python bench/export_vectors.py INDEX_DIR OUT_PREFIX   # writes OUT_PREFIX.npy and OUT_PREFIX.labels.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from visual_search.indexes.local.index import LocalIndex


def main() -> int:
    index_dir, prefix = Path(sys.argv[1]), sys.argv[2]
    with LocalIndex(index_dir, writable=False) as index:
        by_key = {key: row for keys, rows in index.iter_vectors() for key, row in zip(keys, rows)}
        keys = sorted(by_key)
        records = index.get(keys)
        vectors = np.stack([by_key[key] for key in keys])
    np.save(f"{prefix}.npy", vectors)
    Path(f"{prefix}.labels.txt").write_text("".join(f"{records[key].label or ''}\n" for key in keys))
    print(f"{len(keys)} vectors of {index.model_id} -> {prefix}.npy", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
