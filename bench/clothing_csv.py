"""Writes the clothing data set's labelled photos as a `path,label` CSV for `visual-search eval` and the benches.

Unlabelled rows (`Not sure`, `Other`, `Skip`) and rows naming no file are left out, as the data set's README asks.
Usage: python bench/clothing_csv.py [--dataset ../shared/datasets/clothing] [--out var/clothing.csv]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UNLABELLED = {"Not sure", "Other", "Skip"}


def write_clothing_csv(dataset: Path, out: Path) -> int:
    rows = []
    with open(dataset / "images.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            path = (dataset / "images" / f"{row['image']}.jpg").resolve()
            if row["label"] not in UNLABELLED and path.exists():
                rows.append((str(path), row["label"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(sorted(rows))
    return len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared" / "datasets" / "clothing")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "clothing.csv")
    args = parser.parse_args()
    count = write_clothing_csv(args.dataset, args.out)
    print(f"wrote {count} labelled photos to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
