"""`visual-search duplicates`: groups of near-identical catalogue images, as text, JSON or an HTML page."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from visual_search.bootstrap import cli_runtime
from visual_search.core.settings import Settings


def register(sub, common: argparse.ArgumentParser) -> None:
    threshold = cli_runtime.DEFAULT_DUPLICATE_THRESHOLD
    duplicates = sub.add_parser("duplicates", parents=[common], help="list groups of near-identical catalogue images")
    duplicates.add_argument(
        "--threshold",
        type=str,  # checked by checked_threshold: ASCII digits only
        default=threshold,
        help=f"cosine similarity from which two images count as one (default {threshold})",
    )
    output = duplicates.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object")
    output.add_argument("--html", metavar="REPORT.html", help="write a page with each group's thumbnails")
    duplicates.set_defaults(run=run_duplicates)


def run_duplicates(args, settings: Settings) -> int:
    report = cli_runtime.duplicate_report(settings, args.threshold)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    elif args.html:
        from visual_search.api.duplicates_report import render_report

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
