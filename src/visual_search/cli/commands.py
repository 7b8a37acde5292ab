"""What each `visual-search` command does, over the services that bootstrap.py builds."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from visual_search import bootstrap
from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.core.errors import VisualSearchError
from visual_search.core.images import IMAGE_SUFFIXES
from visual_search.core.keys import key_problem, printable
from visual_search.core.local_files import read_regular_file, regular_file_problem
from visual_search.core.pixel_budget import BULK_WAIT_S, DECODING
from visual_search.core.records import SearchFilters
from visual_search.core.settings import Settings
from visual_search.services.indexing import IndexItem


def run_index(args, settings: Settings) -> int:
    entries = read_catalogue_csv(args.labels) if args.labels else []
    # Files are matched by resolved path; S3 objects by the key as the CSV writes it.
    labels = {entry.path: entry for entry in entries} | {entry.listed_path: entry for entry in entries}
    items = _without_duplicate_keys(
        _items_from_paths(args.paths, labels, follow_links_outside=settings.follow_links_outside)
    )
    if not items:
        print("visual-search: no image files (jpg, jpeg, png, webp, gif, bmp, tif, tiff) found", file=sys.stderr)
        return 1
    service = bootstrap.build_indexing_service(settings, batch_size=args.batch_size)
    DECODING.wait_s = BULK_WAIT_S
    try:
        with _progress_bar(len(items), disabled=args.quiet) as progress:
            report = service.index_items(items, progress=progress.update)
    finally:
        service.index.close()  # lets the embedded index bring its HNSW graph up to date and release its lock
    for failure in report.failed:
        print(f"skipped {failure.uri}: {failure.reason}", file=sys.stderr)
    print(
        f"indexed {report.indexed}, unchanged {report.unchanged}, failed {len(report.failed)} "
        f"in {report.seconds:.1f} s ({report.images_per_s:.0f} images/s); index: {_without_password(settings.index)}",
        file=sys.stderr,
    )
    nothing_indexed = report.indexed == 0 and report.unchanged == 0
    return 1 if nothing_indexed else 0


def run_search(args, settings: Settings) -> int:
    service = bootstrap.build_search_service(settings)
    filters = SearchFilters(labels=frozenset(args.label)) if args.label else None
    failures = 0
    for image_path in args.images:
        try:
            outcome = service.search_image(read_regular_file(image_path), k=args.k, filters=filters, colour=args.colour)
        except (VisualSearchError, OSError) as exc:
            failures += 1
            reason = exc.message if isinstance(exc, VisualSearchError) else exc.strerror or "it cannot be read"
            print(f"visual-search: {printable(image_path)}: {reason}", file=sys.stderr)
            continue
        results = [
            {"key": hit.record.key, "score": round(hit.score, 4), "label": hit.record.label} for hit in outcome.hits
        ]
        if args.json:
            print(json.dumps({"query": image_path, "results": results}, ensure_ascii=False))
            continue
        print(f"{image_path} ({outcome.took_ms:.0f} ms)")
        for rank, result in enumerate(results, 1):
            print(f"  {rank:>3}  {result['score']:.4f}  {result['key']}  {result['label'] or ''}".rstrip())
    return 1 if failures else 0


def run_remove(args, settings: Settings) -> int:
    # Deleting needs no model: the index is opened for whichever model made it.
    index = bootstrap.open_index(settings, writable=True)
    try:
        removed = index.delete(list(args.keys))
    finally:
        index.close()
    print(f"removed {removed} of {len(args.keys)} keys", file=sys.stderr)
    return 0 if removed else 1


def run_stats(args, settings: Settings) -> int:
    stats = bootstrap.open_index(settings, writable=False).stats()
    if args.json:
        print(
            json.dumps(
                {
                    "count": stats.count,
                    "dimension": stats.dimension,
                    "model": stats.model_id,
                    "backend": stats.backend,
                    "labels": dict(stats.labels),
                    "centre": dict(stats.centre) if stats.centre else None,
                }
            )
        )
        return 0
    print(f"index:     {_without_password(settings.index)} ({stats.backend})")
    print(f"images:    {stats.count}")
    print(f"model:     {stats.model_id or '-'} ({stats.dimension or '-'} dimensions)")
    if stats.centre:
        print(f"centre:    {stats.centre['centre_id']} (query-domain, fitted on {stats.centre['photos']} photos)")
    for label, count in sorted(stats.labels.items(), key=lambda item: -item[1]):
        print(f"  {count:>6}  {label}")
    return 0


def run_eval(args, settings: Settings) -> int:
    from visual_search.cli.evaluate import run_eval as evaluate  # its own module: two benchmarks, colour weighting

    return evaluate(args, settings)


def run_serve(args, settings: Settings) -> int:
    from visual_search.server.app import run_server

    run_server(settings, host=args.host, port=args.port)
    return 0


def run_invoke(args, settings: Settings) -> int:
    from visual_search.aws.local_invoke import invoke_local

    event = json.loads(Path(args.event).read_text())
    if args.bucket_dir:
        settings = settings.with_overrides(image_store=args.bucket_dir)
    print(json.dumps(invoke_local(args.function, event, settings), indent=2, ensure_ascii=False))
    return 0


def _items_from_paths(paths: list[str], labels: dict, *, follow_links_outside: bool = False) -> Iterator[IndexItem]:
    for location in paths:
        if location.startswith("s3://") or Path(location).is_dir():
            store = bootstrap.build_image_store(location, follow_links_outside=follow_links_outside)
            keys = list(store.list_keys())
            for path_shown, reason in getattr(store, "skipped", ()):  # a folder's FIFOs, sockets, unusable names
                print(f"skipped {path_shown}: {reason}", file=sys.stderr)
            for key in keys:
                uri = store.uri(key)
                entry = labels.get(key) if location.startswith("s3://") else labels.get(Path(uri))
                yield IndexItem(
                    key,
                    uri,
                    (lambda s=store, k=key: s.read(k)),
                    entry.label if entry else None,
                    entry.attributes if entry else {},
                    product=entry.product if entry else None,
                )
        elif Path(location).exists() or Path(location).is_symlink():
            path = Path(location).resolve()
            problem = (
                f"not an image file name ({', '.join(IMAGE_SUFFIXES)})"
                if path.suffix.lower() not in IMAGE_SUFFIXES
                else key_problem(path.name) or regular_file_problem(path)
            )
            if problem:
                print(f"skipped {printable(str(path))}: {problem}", file=sys.stderr)
                continue
            entry = labels.get(path)
            yield IndexItem(
                path.name,
                str(path),
                (lambda p=path: read_regular_file(p)),
                entry.label if entry else None,
                entry.attributes if entry else {},
                product=entry.product if entry else None,
            )
        else:
            print(f"skipped {printable(location)}: no such file or folder", file=sys.stderr)


def _without_duplicate_keys(items: Iterator[IndexItem]) -> list[IndexItem]:
    """Two sources with one key (the same file name given twice, overlapping folders) would overwrite each other:
    keep the first and report the others."""
    first_by_key: dict[str, IndexItem] = {}
    for item in items:
        if item.key in first_by_key:
            print(f"skipped {item.uri}: same key {item.key!r} as {first_by_key[item.key].uri}", file=sys.stderr)
        else:
            first_by_key[item.key] = item
    return list(first_by_key.values())


def _without_password(location: str) -> str:
    """The index location without any password an OpenSearch URL carries (user:password@host)."""
    parts = urlsplit(location)
    if parts.password is None:
        return location
    return urlunsplit(
        parts._replace(netloc=f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else ""))
    )


class _progress_bar:
    """tqdm on stderr showing images/s; a no-op when disabled or when tqdm is not installed."""

    def __init__(self, total: int, *, disabled: bool):
        self.total, self.disabled, self._bar = total, disabled, None

    def __enter__(self):
        if not self.disabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=self.total, unit="img", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass
        return self

    def update(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
