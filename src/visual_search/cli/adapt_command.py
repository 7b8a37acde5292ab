"""`visual-search adapt PATH...`: fit the index's query-domain centre on photos from the shoppers' side.

PATHs are image files, folders (searched recursively) or CSVs with a `path` column (paths relative to the CSV);
no labels are needed. The photos should look like what shoppers search with (their phone photos), not like the
catalogue: the centre removes what those photos have in common (light, clutter, optics). The index then
re-projects its stored vectors (no image is re-embedded). `--clear` removes the centre.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from visual_search import bootstrap
from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.core.errors import InvalidRequestError
from visual_search.core.images import IMAGE_SUFFIXES
from visual_search.core.local_files import read_regular_file
from visual_search.core.ports import AdaptableIndex
from visual_search.core.settings import Settings
from visual_search.services.adaptation import PhotoSource, fit_from_photos


def register(sub, common) -> None:
    adapt = sub.add_parser(
        "adapt",
        parents=[common],
        help="fit the index's query-domain centre on shoppers' photos (files, folders or a CSV with a path column)",
    )
    adapt.add_argument("paths", nargs="*", metavar="PATH")
    adapt.add_argument("--clear", action="store_true", help="remove the centre (search as without adaptation)")
    adapt.add_argument("--json", action="store_true", help="one JSON object")
    adapt.set_defaults(run=run_adapt)


def photo_sources(paths: list[str]) -> list[PhotoSource]:
    """Every photo the PATHs name, in a stable order. InvalidRequestError for a path that does not exist, a
    file that is neither an image nor a CSV, or a CSV without a `path` column."""
    sources: list[PhotoSource] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            sources += [_source(p) for p in found]
        elif path.suffix.lower() == ".csv" and path.is_file():
            sources += [_source(entry.path) for entry in read_catalogue_csv(path)]
        elif path.suffix.lower() in IMAGE_SUFFIXES and path.exists():
            sources.append(_source(path))
        elif not path.exists():
            raise InvalidRequestError(f"{given} does not exist")
        else:
            raise InvalidRequestError(
                f"{given} is neither a folder, an image file ({', '.join(IMAGE_SUFFIXES)}) nor a CSV with a path column"
            )
    return sources


def _source(path: Path) -> PhotoSource:
    return PhotoSource(str(path), functools.partial(read_regular_file, path))


def run_adapt(args, settings: Settings) -> int:
    if args.clear == bool(args.paths):
        raise InvalidRequestError("give the photos to adapt on (files, folders or a CSV), or --clear, not both")
    sources = [] if args.clear else photo_sources(args.paths)
    if not args.clear and not sources:
        raise InvalidRequestError(f"no image files found in {', '.join(args.paths)}")
    embedder = bootstrap.build_embedder(settings, bulk=True)
    index = bootstrap.open_index(settings, writable=True, embedder=embedder)
    if not isinstance(index, AdaptableIndex):
        index.close()
        raise InvalidRequestError(f"the index {settings.index} cannot hold a query-domain centre")
    try:
        if args.clear:
            previous = index.centre
            index.set_centre(None)
            summary: dict[str, object] = {
                "photos_used": 0,
                "moved": previous.distance_to(None) if previous else 0.0,
                "centre_id": None,
            }
            text = "removed the query-domain centre" if previous else "the index had no query-domain centre"
        else:
            report = fit_from_photos(embedder, index, sources, max_pixels=settings.max_pixels)
            for name, reason in report.skipped:
                print(f"skipped {name}: {reason}", file=sys.stderr)
            summary = {
                "photos_used": report.photos_used,
                "skipped": len(report.skipped),
                "moved": round(report.moved, 6),
                "centre_id": report.centre.centre_id,
            }
            text = (
                f"fitted the query-domain centre on {report.photos_used} photos"
                f"{f' ({len(report.skipped)} skipped)' if report.skipped else ''}; it moved {report.moved:.4f} "
                f"(centre {report.centre.centre_id}); the index now searches in {index.space_id}"
            )
    finally:
        index.close()
    print(json.dumps(summary) if args.json else text)
    return 0
