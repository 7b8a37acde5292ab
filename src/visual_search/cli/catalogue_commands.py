"""The catalogue commands: `index DIR --watch`, `serve --watch DIR` and `duplicates`.

`register` adds them to the parser that cli/main.py builds; without --watch, index and serve run as before.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from visual_search import bootstrap
from visual_search.cli import commands
from visual_search.core.errors import InvalidRequestError
from visual_search.core.settings import Settings
from visual_search.services.duplicates import DEFAULT_THRESHOLD, checked_threshold, find_duplicates
from visual_search.services.watching import FolderWatcher, WatchReport


def register(sub, common: argparse.ArgumentParser, *, index_parser, serve_parser) -> None:
    index_parser.add_argument(
        "--watch",
        action="store_true",
        help="after indexing, keep following the folder: new, changed and deleted images",
    )
    index_parser.set_defaults(run=run_index)
    serve_parser.add_argument("--watch", metavar="DIR", help="also watch this folder and index its changes")
    serve_parser.add_argument("--labels", metavar="CSV", help="labels CSV of the watched folder (re-read on change)")
    serve_parser.set_defaults(run=run_serve)

    duplicates = sub.add_parser("duplicates", parents=[common], help="list groups of near-identical catalogue images")
    duplicates.add_argument(
        "--threshold",
        type=str,  # checked by checked_threshold: ASCII digits only
        default=DEFAULT_THRESHOLD,
        help=f"cosine similarity from which two images count as one (default {DEFAULT_THRESHOLD})",
    )
    output = duplicates.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object")
    output.add_argument("--html", metavar="REPORT.html", help="write a page with each group's thumbnails")
    duplicates.set_defaults(run=run_duplicates)


def run_index(args, settings: Settings) -> int:
    if not args.watch:
        return commands.run_index(args, settings)
    folder = _one_folder(args.paths)
    writer = bootstrap.build_catalogue_writer(settings, watched_folder=folder)
    watcher = FolderWatcher(
        folder,
        bootstrap.build_image_store(str(folder), follow_links_outside=settings.follow_links_outside),
        writer,
        labels_csv=args.labels,
        on_change=_print_changes,
    )
    print(f"watching {folder} (Ctrl+C stops; everything indexed so far is kept)", file=sys.stderr)
    try:
        watcher.run(threading.Event())  # until Ctrl+C
    finally:
        writer.index.close()
    return 0


def run_serve(args, settings: Settings) -> int:
    if not args.watch:
        if args.labels:
            raise InvalidRequestError("--labels goes with --watch DIR")
        return commands.run_serve(args, settings)
    import uvicorn

    from visual_search.server.app import HEALTH_CHECKS, create_app
    from visual_search.server.catalogue_routes import WRITER_STATE
    from visual_search.server.connection_guard import server_config
    from visual_search.services.search import SearchService

    folder = _one_folder([args.watch])
    embedder = bootstrap.build_embedder(settings)
    writer = bootstrap.build_catalogue_writer(settings, embedder=embedder, watched_folder=folder)
    # One index object serves both: the watcher and POST /items write through the writer, searches read it.
    app = create_app(settings, search_service=SearchService(embedder, writer.index, max_pixels=settings.max_pixels))
    setattr(app.state, WRITER_STATE, writer)
    watcher = FolderWatcher(
        folder,
        bootstrap.build_image_store(str(folder), follow_links_outside=settings.follow_links_outside),
        writer,
        labels_csv=args.labels,
        on_change=_print_changes,
    )
    setattr(app.state, HEALTH_CHECKS, [watcher.problem])  # a dead or stuck watcher makes /health a 503
    watcher.start()
    try:
        uvicorn.Server(server_config(app, host=args.host, port=args.port, log_level="info")).run()
    finally:
        watcher.stop()
        writer.index.close()
    return 0


def run_duplicates(args, settings: Settings) -> int:
    threshold = checked_threshold(args.threshold)  # before opening anything
    index = bootstrap.open_index(settings, writable=False)
    try:
        report = find_duplicates(index, threshold=threshold)
    finally:
        index.close()
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    elif args.html:
        from visual_search.cli.duplicates_html import render_report

        Path(args.html).write_text(
            render_report(report, follow_links_outside=settings.follow_links_outside), encoding="utf-8"
        )
        print(
            f"{len(report.groups)} groups of near-duplicates among {report.images_scanned} images: {args.html}",
            file=sys.stderr,
        )
    else:
        for number, group in enumerate(report.groups, 1):
            print(f"group {number} ({len(group.members)} images)")
            for member in group.members:
                print(f"  {member.score:.4f}  {member.record.key}")
        print(
            f"{len(report.groups)} groups of near-duplicates among {report.images_scanned} images "
            f"(threshold {report.threshold})",
            file=sys.stderr,
        )
    return 0


def _one_folder(paths: list[str]) -> Path:
    if len(paths) != 1 or not Path(paths[0]).is_dir():
        raise InvalidRequestError("--watch follows one folder: give exactly one existing folder")
    return Path(paths[0]).resolve()


def _print_changes(report: WatchReport) -> None:
    for failure in report.failed:
        print(f"skipped {failure}", file=sys.stderr)
    print(
        f"watch: indexed {len(report.indexed)}, removed {len(report.removed)}, failed {len(report.failed)}",
        file=sys.stderr,
    )
