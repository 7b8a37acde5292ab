"""Builds the bundled demo catalogue (demo/catalogue/) from the CC0 clothing photos: a label-stratified,
deterministic sample of about 300 images, downscaled to at most 320 px, with labels, made-up product data
(scripts/demo_products.py: title, price, brand, a link on shop.example) and attribution.

Usage: python scripts/make_demo_catalogue.py [--dataset ../shared/datasets/clothing] [--count 300]
       python scripts/make_demo_catalogue.py --products-only   # rewrite labels.csv's product columns only
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sys
from collections import defaultdict
from pathlib import Path

from demo_products import PRODUCT_COLUMNS, demo_product  # scripts/demo_products.py: run as `python scripts/...`
from PIL import Image, ImageOps

UNLABELLED = {"Not sure", "Other", "Skip"}
# Photos whose label in the collection is plainly wrong, corrected here after looking at them (image id -> label),
# so the made-up title does not contradict the photo (a navy blazer was labelled Longsleeve and so titled
# "Henley long-sleeve top"). Applied wherever labels.csv is written, --products-only included.
LABEL_CORRECTIONS = {"36bde3bf": "Blazer"}
REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared" / "datasets" / "clothing")
    parser.add_argument("--out", type=Path, default=REPO / "demo" / "catalogue")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--max-side-px", type=int, default=320)
    parser.add_argument("--products-only", action="store_true", help="keep the photos; rewrite labels.csv")
    args = parser.parse_args()
    if args.products_only:
        return rewrite_products(args.out)

    by_label: dict[str, list[dict]] = defaultdict(list)
    with open(args.dataset / "images.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["label"] not in UNLABELLED and (args.dataset / "images" / f"{row['image']}.jpg").exists():
                by_label[row["label"]].append(row)
    # A stable pseudo-random order (by hash of the uuid), so re-running picks the same photos.
    for rows in by_label.values():
        rows.sort(key=lambda row: hashlib.sha256(row["image"].encode()).hexdigest())
    total = sum(len(rows) for rows in by_label.values())
    quota = {label: max(6, round(args.count * len(rows) / total)) for label, rows in by_label.items()}

    images_dir = args.out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for label in sorted(by_label):
        for row in by_label[label][: quota[label]]:
            with Image.open(args.dataset / "images" / f"{row['image']}.jpg") as source:
                image = ImageOps.exif_transpose(source).convert("RGB")
                image.thumbnail((args.max_side_px, args.max_side_px), Image.Resampling.LANCZOS)
                buffer = io.BytesIO()
                image.save(buffer, "JPEG", quality=85, optimize=True)
            name = f"{row['image'][:8]}.jpg"
            (images_dir / name).write_bytes(buffer.getvalue())
            kids = "yes" if row["kids"].strip().lower() == "true" else "no"
            written.append((f"images/{name}", label, kids, row["image"]))

    # The image id is the photo's file name without its suffix (the first 8 hex digits of the original uuid).
    write_labels(args.out, [dict(path=path, label=label, kids=kids) for path, label, kids, _ in written])
    with open(args.out / "ATTRIBUTION.md", "w") as handle:
        handle.write(
            "# Demo catalogue: attribution\n\n"
            f'{len(written)} photos from the "clothing-dataset" collection by Alexey Grigorev (2020), dedicated to\n'
            "the public domain under CC0 1.0 (https://creativecommons.org/publicdomain/zero/1.0/). Downscaled to at\n"
            f"most {args.max_side_px} px by `scripts/make_demo_catalogue.py`; labels from the collection's images.csv\n"
            f"(corrected for {len(LABEL_CORRECTIONS)} plainly mislabelled photo(s): LABEL_CORRECTIONS there).\n\n"
            "| file | label | original image id |\n|---|---|---|\n"
        )
        handle.writelines(
            f"| {path} | {LABEL_CORRECTIONS.get(uuid[:8], label)} | {uuid} |\n" for path, label, _, uuid in written
        )
    size_mb = sum(p.stat().st_size for p in images_dir.iterdir()) / 1e6
    print(f"wrote {len(written)} photos ({size_mb:.1f} MB) to {args.out}", file=sys.stderr)
    return 0


def write_labels(out: Path, rows: list[dict]) -> None:
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "kids", *PRODUCT_COLUMNS])
        writer.writeheader()
        for row in rows:
            image_id = Path(row["path"]).stem
            label = LABEL_CORRECTIONS.get(image_id, row["label"])
            writer.writerow(
                {
                    "path": row["path"],
                    "label": label,
                    "kids": row["kids"],
                    **demo_product(label, image_id, kids=row["kids"] == "yes"),
                }
            )


def rewrite_products(out: Path) -> int:
    with open(out / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    write_labels(out, rows)
    print(f"rewrote the product columns of {len(rows)} rows in {out / 'labels.csv'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
