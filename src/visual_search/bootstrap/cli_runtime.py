"""What the CLI's commands run on: the catalogue items named by paths (files, folders, s3:// prefixes) with their
labels CSV, the folder watcher of `index --watch`, the duplicate report and the retrieval evaluation of `eval`.
The commands parse and print; these build and run."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from visual_search.bootstrap import build_embedder, build_image_store, build_indexing_service, open_index
from visual_search.bootstrap.server_runtime import build_folder_watcher, build_indexing_writer
from visual_search.core import colour as colour_signature
from visual_search.core.catalogue_csv import read_catalogue_csv
from visual_search.core.errors import InvalidRequestError
from visual_search.core.images import IMAGE_SUFFIXES, decode_image
from visual_search.core.keys import key_problem, printable
from visual_search.core.local_files import read_regular_file, regular_file_problem
from visual_search.core.settings import Settings
from visual_search.services.catalogue import IndexingWriter
from visual_search.services.duplicates import DEFAULT_THRESHOLD, DuplicateReport, checked_threshold, find_duplicates
from visual_search.services.evaluation import RetrievalScores, score_retrieval
from visual_search.services.indexing import IndexItem
from visual_search.services.shopper_sim import shopper_queries
from visual_search.services.watching import FolderWatcher, WatchReport

DEFAULT_DUPLICATE_THRESHOLD = DEFAULT_THRESHOLD


@dataclass
class CatalogueItems:
    """The items to index, and a line for each file or object left out and why."""

    items: list[IndexItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def catalogue_items(paths: list[str], labels_csv: str | Path | None) -> CatalogueItems:
    """The IndexItems of image files, folders and s3:// prefixes, labelled from `labels_csv`. Two sources with one
    key (the same file name given twice, overlapping folders) would overwrite each other: the first is kept."""
    entries = read_catalogue_csv(labels_csv) if labels_csv else []
    # Files are matched by resolved path; S3 objects by the key as the CSV writes it.
    labels = {entry.path: entry for entry in entries} | {entry.listed_path: entry for entry in entries}
    found = CatalogueItems()
    first_by_key: dict[str, IndexItem] = {}
    for item in _items_from_paths(paths, labels, found.skipped):
        if item.key in first_by_key:
            found.skipped.append(f"{item.uri}: same key {item.key!r} as {first_by_key[item.key].uri}")
        else:
            first_by_key[item.key] = item
    found.items = list(first_by_key.values())
    return found


def _items_from_paths(paths: list[str], labels: dict, skipped: list[str]) -> Iterator[IndexItem]:
    for location in paths:
        if location.startswith("s3://") or Path(location).is_dir():
            store = build_image_store(location)
            keys = list(store.list_keys())
            skipped += [f"{shown}: {reason}" for shown, reason in store.skipped]  # FIFOs, sockets, unusable names
            for key in keys:
                uri = store.uri(key)
                entry = labels.get(key) if location.startswith("s3://") else labels.get(Path(uri))
                yield IndexItem.listed(key, uri, (lambda s=store, k=key: s.read(k)), entry)
        elif Path(location).exists() or Path(location).is_symlink():
            path = Path(location).resolve()
            problem = (
                f"not an image file name ({', '.join(IMAGE_SUFFIXES)})"
                if path.suffix.lower() not in IMAGE_SUFFIXES
                else key_problem(path.name) or regular_file_problem(path)
            )
            if problem:
                skipped.append(f"{printable(str(path))}: {problem}")
                continue
            yield IndexItem.listed(path.name, str(path), (lambda p=path: read_regular_file(p)), labels.get(path))
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


def duplicate_report(settings: Settings, threshold: float) -> DuplicateReport:
    """The near-duplicate groups of the configured index (the threshold is checked before anything is opened)."""
    threshold = checked_threshold(threshold)
    index = open_index(settings, writable=False)
    try:
        return find_duplicates(index, threshold=threshold)
    finally:
        index.close()


@dataclass
class Evaluation:
    """What `visual-search eval` measured, and on which model and resize policy."""

    scores: RetrievalScores
    model_id: str
    resize: str


def evaluate_retrieval(
    settings: Settings,
    gallery_csv: str,
    queries_csv: str | None,
    *,
    k: int,
    resize: str | None,
    shopper_sim: int | None,
    seed: int,
    colour: float,
    progress: Callable[[int], Any],
    on_skipped: Callable[[str], None],
) -> Evaluation:
    """Embeds the gallery (and the queries, or `shopper_sim` synthetic shopper photos of gallery items) into
    scratch indexes and scores retrieval: leave-one-out by label without queries. `progress(total)` gives a
    context manager whose update(n) reports embedded images; `on_skipped(line)` hears of images left out."""
    embedder = build_embedder(settings, bulk=True)
    if resize:
        embedder.spec = replace(embedder.spec, resize=resize)
    shopper = shopper_sim is not None
    # The shopper benchmark needs no labels: each gallery photo is its own item.
    gallery = [entry for entry in read_catalogue_csv(gallery_csv) if entry.label or shopper]
    queries = [entry for entry in read_catalogue_csv(queries_csv) if entry.label] if queries_csv else None

    def embed_all(items: list[IndexItem], name: str, scratch: str) -> tuple[np.ndarray, list[int]]:
        service = build_indexing_service(settings.with_overrides(index=str(Path(scratch) / name)), embedder=embedder)
        with progress(len(items)) as bar:
            report = service.index_items(items, progress=bar.update)
        for failure in report.failed:
            on_skipped(f"{failure.uri}: {failure.reason}")
        try:
            vectors = {i: service.index.get_vector(item.key) for i, item in enumerate(items)}
        finally:
            service.index.close()
        kept = [i for i, vector in vectors.items() if vector is not None]
        if not kept:
            raise InvalidRequestError(f"none of the {len(items)} images of the {name} could be embedded")
        return np.stack([vectors[i] for i in kept]), kept

    def items_of(entries) -> list[IndexItem]:
        return [IndexItem(str(i), str(e.path), e.path.read_bytes, e.label) for i, e in enumerate(entries)]

    query_vectors: np.ndarray | None = None
    query_labels: list | None = None
    with tempfile.TemporaryDirectory(prefix="visual-search-eval-") as scratch:
        gallery_vectors, kept = embed_all(items_of(gallery), "gallery", scratch)
        gallery = [gallery[i] for i in kept]
        gallery_labels = [str(i) for i in range(len(gallery))] if shopper else [e.label for e in gallery]
        if shopper_sim is not None:
            made = shopper_queries(
                shopper_sim, len(gallery), lambda i: decode_image(gallery[i].path.read_bytes()).image, seed=seed
            )
            items = [
                IndexItem(f"q{n}", f"shopper photo {n} of {gallery[q.source].path}", (lambda q=q: q.jpeg))
                for n, q in enumerate(made)
            ]
            query_vectors, kept = embed_all(items, "queries", scratch)
            query_labels = [str(made[i].source) for i in kept]
        elif queries is not None:
            query_vectors, kept = embed_all(items_of(queries), "queries", scratch)
            query_labels = [queries[i].label for i in kept]
    leave_one_out = query_vectors is None
    scores = score_retrieval(
        gallery_vectors,
        gallery_labels,
        _weighted(gallery_vectors if query_vectors is None else query_vectors, embedder.model_id, colour),
        gallery_labels if leave_one_out else query_labels,
        k=k,
        same_items=leave_one_out,
    )
    return Evaluation(scores, embedder.model_id, embedder.spec.resize)


def _weighted(vectors: np.ndarray, model_id: str, weight: float) -> np.ndarray:
    """Query rows as a search makes them from stored vectors: the colour part weighted by `weight`."""
    colour_dimension = colour_signature.colour_dimension_of(model_id)
    if not colour_dimension:
        if weight:
            raise InvalidRequestError(f"--colour needs a model with a colour descriptor; {model_id} has none")
        return vectors
    return np.stack([colour_signature.query_vector(row, colour_dimension, weight) for row in vectors])
