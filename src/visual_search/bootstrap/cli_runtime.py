"""What the CLI's commands run on: the catalogue items named by paths (files, folders, s3:// prefixes) with their
labels CSV, the folder watcher of `index --watch` and the duplicate report. The commands
parse and print; these build and run."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from visual_search.bootstrap import build_image_store, open_index
from visual_search.bootstrap.server_runtime import build_folder_watcher, build_indexing_writer
from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.core.keys import key_problem, printable
from visual_search.core.local_files import read_regular_file, regular_file_problem
from visual_search.core.settings import Settings
from visual_search.services.catalogue import IndexingWriter
from visual_search.services.duplicates import DEFAULT_THRESHOLD, DuplicateReport, checked_threshold, find_duplicates
from visual_search.services.indexing import IndexItem
from visual_search.services.watching import FolderWatcher, WatchReport

DEFAULT_DUPLICATE_THRESHOLD = DEFAULT_THRESHOLD


@dataclass
class CatalogueItems:
    """The items to index, and a line for each file or object left out and why."""

    items: list[IndexItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def catalogue_items(
    paths: list[str], labels_csv: str | Path | None, *, follow_links_outside: bool = False
) -> CatalogueItems:
    """The IndexItems of image files, folders and s3:// prefixes, labelled from `labels_csv`. Two sources with one
    key (the same file name given twice, overlapping folders) would overwrite each other: the first is kept."""
    entries = read_catalogue_csv(labels_csv) if labels_csv else []
    # Files are matched by resolved path; S3 objects by the key as the CSV writes it.
    labels = {entry.path: entry for entry in entries} | {entry.listed_path: entry for entry in entries}
    found = CatalogueItems()
    first_by_key: dict[str, IndexItem] = {}
    for item in _items_from_paths(paths, labels, found.skipped, follow_links_outside):
        if item.key in first_by_key:
            found.skipped.append(f"{item.uri}: same key {item.key!r} as {first_by_key[item.key].uri}")
        else:
            first_by_key[item.key] = item
    found.items = list(first_by_key.values())
    return found


def _items_from_paths(
    paths: list[str], labels: dict, skipped: list[str], follow_links_outside: bool
) -> Iterator[IndexItem]:
    for location in paths:
        if location.startswith("s3://") or Path(location).is_dir():
            store = build_image_store(location, follow_links_outside=follow_links_outside)
            keys = list(store.list_keys())
            skipped += [f"{shown}: {reason}" for shown, reason in store.skipped]  # FIFOs, sockets, unusable names
            for key in keys:
                uri = store.uri(key)
                entry = labels.get(key) if location.startswith("s3://") else labels.get(Path(uri))
                yield IndexItem.listed(key, uri, functools.partial(store.read, key), entry)
        elif Path(location).exists() or Path(location).is_symlink():
            path = Path(location).resolve()
            problem = key_problem(path.name) or regular_file_problem(path)  # the one key check (core/keys.py)
            if problem:
                skipped.append(f"{printable(str(path))}: {problem}")
                continue
            yield IndexItem.listed(path.name, str(path), functools.partial(read_regular_file, path), labels.get(path))
        else:
            skipped.append(f"{printable(location)}: no such file or folder")


@dataclass
class FolderWatchRuntime:
    """`index DIR --watch`: the folder's watcher and the one writer of the index it keeps equal to the folder."""

    watcher: FolderWatcher
    writer: IndexingWriter

    def run(self) -> None:
        """Catch up with the folder, then follow it until interrupted (Ctrl+C)."""
        self.watcher.run(threading.Event())

    def close(self) -> None:
        self.writer.index.close()  # brings the HNSW graph up to date and releases the writer lock


def build_folder_watch_runtime(
    settings: Settings,
    folder: str | Path,
    *,
    labels_csv: str | Path | None = None,
    on_change: Callable[[WatchReport], None] | None = None,
) -> FolderWatchRuntime:
    writer = build_indexing_writer(settings, watched_folder=folder)
    watcher = build_folder_watcher(settings, folder, writer, labels_csv=labels_csv, on_change=on_change)
    return FolderWatchRuntime(watcher, writer)


def duplicate_report(settings: Settings, threshold: float | str) -> DuplicateReport:
    """The near-duplicate groups of the configured index (the threshold is checked before anything is opened)."""
    threshold = checked_threshold(threshold)
    index = open_index(settings, writable=False)
    try:
        return find_duplicates(index, threshold=threshold)
    finally:
        index.close()
