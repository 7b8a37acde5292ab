"""A reader process for the crash-safety tests: searches an index while another process writes it.

    python index_reader.py INDEX_DIR --seconds S [--k K] [--until-count N]

Waits for the index to exist, then, until S seconds have passed (or it has seen N records), searches with the vector of the first key it
saw and prints one JSON line per search: {"count", "keys", "scores"}. The test checks each line. Exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from visual_search.core.errors import NotFoundError
from visual_search.indexes.local.index import LocalIndex


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("index_dir")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--until-count", type=int, help="stop once a search has seen this many records")
    args = parser.parse_args()
    stop_at = time.monotonic() + args.seconds
    index = None
    while index is None and time.monotonic() < stop_at:
        try:
            index = LocalIndex(Path(args.index_dir), writable=False)
        except NotFoundError:
            time.sleep(0.02)
    query_key = None
    while index is not None and time.monotonic() < stop_at:
        if query_key is None:
            keys = [record.key for record in index.list_records(0, 500).records]
            query_key = keys[0] if keys else None
            if query_key is None:
                time.sleep(0.02)
                continue
        count = index.count()
        hits = index.search(index.get_vector(query_key), args.k)
        print(
            json.dumps(
                {"count": count, "keys": [hit.record.key for hit in hits], "scores": [hit.score for hit in hits]}
            ),
            flush=True,
        )
        if args.until_count is not None and count >= args.until_count:
            break
        time.sleep(0.01)
    if index is not None:
        index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
