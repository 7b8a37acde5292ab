"""What each `visual-search` command does, over the services that bootstrap/ builds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from visual_search import bootstrap
from visual_search.bootstrap import cli_runtime
from visual_search.core.errors import InvalidRequestError, VisualSearchError
from visual_search.core.keys import printable
from visual_search.core.local_files import read_regular_file
from visual_search.core.pixel_budget import BULK_WAIT_S, DECODING
from visual_search.core.records import SearchFilters
from visual_search.core.settings import Settings


def run_index(args, settings: Settings) -> int:
    if args.watch:
        return _run_watch(args, settings)
    found = cli_runtime.catalogue_items(args.paths, args.labels, follow_links_outside=settings.follow_links_outside)
    for line in found.skipped:
        print(f"skipped {line}", file=sys.stderr)
    items = found.items
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

    if args.labels and not args.watch:
        raise InvalidRequestError("--labels goes with --watch DIR")
    watch = {}
    if args.watch:
        watch = {"watched_folder": _one_folder([args.watch]), "labels_csv": args.labels, "on_change": _print_changes}
    run_server(settings, host=args.host, port=args.port, **watch)
    return 0


def _run_watch(args, settings: Settings) -> int:
    folder = _one_folder(args.paths)
    runtime = cli_runtime.build_folder_watch_runtime(settings, folder, labels_csv=args.labels, on_change=_print_changes)
    print(f"watching {folder} (Ctrl+C stops; everything indexed so far is kept)", file=sys.stderr)
    try:
        runtime.run()  # until Ctrl+C
    finally:
        runtime.close()
    return 0


def _one_folder(paths: list[str]) -> Path:
    if len(paths) != 1 or not Path(paths[0]).is_dir():
        raise InvalidRequestError("--watch follows one folder: give exactly one existing folder")
    return Path(paths[0]).resolve()


def _print_changes(report) -> None:
    """A folder watcher's report of one round (services/watching.WatchReport)."""
    for failure in report.failed:
        print(f"skipped {failure}", file=sys.stderr)
    print(
        f"watch: indexed {len(report.indexed)}, removed {len(report.removed)}, failed {len(report.failed)}",
        file=sys.stderr,
    )


def run_invoke(args, settings: Settings) -> int:
    from visual_search.aws.local_invoke import invoke_local

    event = json.loads(Path(args.event).read_text())
    if args.bucket_dir:
        settings = settings.with_overrides(image_store=args.bucket_dir)
    print(json.dumps(invoke_local(args.function, event, settings), indent=2, ensure_ascii=False))
    return 0


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
