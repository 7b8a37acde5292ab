"""The `visual-search` command: index folders, search by photo, evaluate retrieval, serve the web app.

Each command is a thin entry point over the services built by bootstrap/; user errors print one line to
stderr and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from visual_search import __version__
from visual_search.core.errors import VisualSearchError
from visual_search.core.records import DEFAULT_K, MAX_K
from visual_search.core.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env(
            index=args.index_dir,
            model=args.model,
            threads=args.threads,
            calibration_dir=args.calibration_dir,
            follow_links_outside=getattr(args, "follow_links_outside", False) or None,  # not on `aws`
        )
        return args.run(args, settings)
    except VisualSearchError as exc:
        print(f"visual-search: {exc.message}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"visual-search: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("visual-search: interrupted; everything committed so far is kept", file=sys.stderr)
        return 130


def _build_parser() -> argparse.ArgumentParser:
    from visual_search.cli import adapt_command, aws_commands, catalogue_commands, commands

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--index-dir",
        "--index",
        dest="index_dir",
        metavar="DIR_OR_URL",
        help="index directory, or an OpenSearch URL such as opensearch://127.0.0.1:9200/products "
        "(default: $VISUAL_SEARCH_INDEX, else a per-user data directory)",
    )
    common.add_argument(
        "--model", help="lite2-fp32 (default), lite2-int8 (faster indexing), or a custom model's JSON config"
    )
    common.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    common.add_argument(
        "--calibration-dir",
        metavar="DIR",
        help="real photos to calibrate lite2-int8 on (default: the bundled demo catalogue)",
    )

    common.add_argument(
        "--follow-links-outside",
        action="store_true",
        help="follow symlinks in a catalogue folder even when they point outside it (default: only links whose "
        "target stays inside the folder; $VISUAL_SEARCH_FOLLOW_LINKS_OUTSIDE)",
    )

    parser = argparse.ArgumentParser(prog="visual-search", description="Visual product search.")
    parser.add_argument("--version", action="version", version=f"visual-search {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    index = sub.add_parser("index", parents=[common], help="index image files, folders or s3://bucket/prefix")
    index.add_argument("paths", nargs="+", metavar="PATH")
    index.add_argument("--labels", metavar="CSV", help="CSV with path,label columns; other columns become attributes")
    index.add_argument("--batch-size", type=int, default=32)
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.add_argument(
        "--watch",
        action="store_true",
        help="after indexing, keep following the folder: new, changed and deleted images",
    )
    index.set_defaults(run=commands.run_index)

    search = sub.add_parser("search", parents=[common], help="find the indexed images most similar to photos")
    search.add_argument("images", nargs="+", metavar="IMAGE")
    search.add_argument("-k", type=int, default=DEFAULT_K, help=f"how many results (1-{MAX_K}, default {DEFAULT_K})")
    search.add_argument("--label", action="append", help="only results with this label (repeatable)")
    search.add_argument("--json", action="store_true", help="one JSON object per query line")
    search.add_argument(
        "--colour",
        type=float,
        default=0.0,
        metavar="W",
        help="weight of colour similarity fused with appearance, 0-1 (default 0: appearance only)",
    )
    search.set_defaults(run=commands.run_search)

    remove = sub.add_parser("remove", parents=[common], help="remove images from the index by key")
    remove.add_argument("keys", nargs="+", metavar="KEY")
    remove.set_defaults(run=commands.run_remove)

    stats = sub.add_parser("stats", parents=[common], help="what the index holds")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(run=commands.run_stats)

    evaluate = sub.add_parser("eval", parents=[common], help="measure retrieval quality on labelled photos")
    evaluate.add_argument("--gallery", required=True, metavar="CSV", help="path,label CSV of the gallery")
    evaluate.add_argument("--queries", metavar="CSV", help="path,label CSV of queries (default: leave-one-out)")
    evaluate.add_argument("-k", type=int, default=10)
    evaluate.add_argument("--resize", choices=["squash", "center_crop", "pad"], help="override the model's policy")
    evaluate.add_argument(
        "--shopper-sim",
        type=int,
        metavar="N",
        help="instead of categories: N synthetic shopper photos of gallery items, scored by exact-item recall",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the shopper-sim queries (default 0)")
    evaluate.add_argument("--colour", type=float, default=0.0, metavar="W", help="colour weight, 0-1, as in search")
    evaluate.add_argument(
        "--adapt",
        nargs="+",
        metavar="PATH",
        help="also score with a query-domain centre fitted on these photos (files, folders, CSV; never the queries)",
    )
    evaluate.add_argument(
        "--adapt-sim",
        type=int,
        metavar="M",
        help="with --shopper-sim: also score with a centre fitted on M synthetic shopper photos (another seed) of "
        "gallery items no query shows",
    )
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=commands.run_eval)

    serve = sub.add_parser("serve", parents=[common], help="serve the HTTP API and the web UI")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--watch", metavar="DIR", help="also watch this folder and index its changes")
    serve.add_argument("--labels", metavar="CSV", help="labels CSV of the watched folder (re-read on change)")
    serve.set_defaults(run=commands.run_serve)

    invoke = sub.add_parser("invoke", parents=[common], help="run a Lambda handler in-process on an event file")
    invoke.add_argument("function", choices=["search", "index", "refit"])
    invoke.add_argument("event", metavar="EVENT.json")
    invoke.add_argument("--bucket-dir", help="a local folder standing in for the images bucket")
    invoke.set_defaults(run=commands.run_invoke)
    catalogue_commands.register(sub, common)  # duplicates
    aws_commands.register(sub, common)  # aws publish-frontend, aws reindex
    adapt_command.register(sub, common)  # adapt: the query-domain centre
    return parser


if __name__ == "__main__":
    sys.exit(main())
