"""Watch a folder and keep the index equal to it: the laptop's twin of the bucket's auto-indexing.

watchdog reports file events; a periodic rescan is the safety net where events get lost (network filesystems,
an overflowing inotify queue, changes made while nothing was watching). A changed file is indexed only once its
size and mtime have stayed the same for `settle_s`, so a file still being copied is never indexed half-way.
Keys are paths relative to the folder, as `visual-search index DIR` makes them, so a rename is a delete of the
old key and an add of the new one. Every batch is committed by the IndexingService before the next, so a killed
watcher loses nothing committed and its next start catches up with one rescan.

The watcher never dies of what it watches: any error in one round (a labels file of bad bytes, a FIFO, a file
that vanished mid-read, an index that refused a batch) is logged, keeps the previous state (labels, what was
indexed), and the next round goes on. `problem()` tells whether it is healthy, for the server's /health: a thread
that ended without being stopped, or one whose rounds stopped coming (stuck), is a reason to answer 503.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from visual_search.core.catalogue_csv import CatalogueEntry, read_catalogue_csv
from visual_search.core.errors import VisualSearchError
from visual_search.core.keys import printable
from visual_search.core.ports import FolderEvents, FolderObserver, FolderStore
from visual_search.core.records import MAX_PAGE
from visual_search.services.catalogue import IndexingWriter
from visual_search.services.indexing import IndexItem

logger = logging.getLogger(__name__)

Stat = tuple[int, int]  # (size, mtime_ns)
_ROUND_BATCH = 256  # files indexed between two heartbeats
DEFAULT_STUCK_AFTER_S = 600.0  # longer than any one round: a batch of 32 images on a slow laptop, or a rescan


@dataclass
class WatchReport:
    """What one round of changes did; `on_change` receives one per round that changed something."""

    indexed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "key: reason"


class FolderWatcher:
    """Keeps the index equal to the image files under `folder` (read through `store`, the same folder).
    `event_source` starts the folder's native file events (stores/folder_events.py, injected by bootstrap);
    without it, or with `use_events` False, rescans alone find the changes.

    `run(stop)` blocks until `stop` is set; `start()` runs it in a daemon thread and `stop()` ends it.
    """

    def __init__(
        self,
        folder: str | Path,
        store: FolderStore,
        writer: IndexingWriter,
        *,
        labels_csv: str | Path | None = None,
        settle_s: float = 1.0,
        rescan_s: float = 60.0,
        poll_s: float = 0.2,
        use_events: bool = True,
        on_change: Callable[[WatchReport], None] | None = None,
        event_source: FolderEvents | None = None,
        stuck_after_s: float = DEFAULT_STUCK_AFTER_S,
    ):
        self.folder = Path(folder).resolve()
        self.store = store
        self.writer = writer
        self.labels_csv = Path(labels_csv).resolve() if labels_csv else None
        self.settle_s, self.rescan_s, self.poll_s = settle_s, rescan_s, poll_s
        self.use_events = use_events
        self.event_source = event_source
        self.stuck_after_s = stuck_after_s
        self.on_change = on_change or (lambda report: None)
        self._labels: dict[Path, CatalogueEntry] = {}
        self._labels_stat: Stat | None = None
        self._indexed: dict[str, Stat] = {}  # what each key's file looked like when it was last indexed
        self._pending: dict[str, tuple[Stat | None, float]] = {}  # key -> (last stat seen, since when)
        self._touched: set[str] = set()  # keys named by events since the last tick (filled by watchdog's thread)
        self._touched_lock = threading.Lock()
        self._rescan_due = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = time.monotonic()  # when the loop last finished a round (or a batch of one)
        self.last_error: str | None = None  # the last round's failure, for the log and /health
        self._died_of: str | None = None

    # -- running --------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._heartbeat = time.monotonic()
        self._thread = threading.Thread(target=self._run_recording_death, name="folder-watcher", daemon=True)
        self._thread.start()

    def problem(self) -> str | None:
        """Why the watcher is not doing its job (its thread ended, or its rounds stopped coming); None when it is.
        A watcher that was never started, or was stopped on purpose, has no problem."""
        if self._thread is None or self._stop.is_set():
            return None
        if not self._thread.is_alive():
            return f"the folder watcher of {self.folder} stopped: {self._died_of or 'its thread ended'}"
        silent_s = time.monotonic() - self._heartbeat
        if silent_s > self.stuck_after_s:
            return f"the folder watcher of {self.folder} has made no progress for {silent_s:.0f} s (stuck)"
        return None

    def _run_recording_death(self) -> None:
        try:
            self.run(self._stop)
        except BaseException as error:  # what ends the thread is told by /health, then re-raised to be logged
            self._died_of = f"{type(error).__name__}: {error}"
            raise

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def run(self, stop: threading.Event) -> None:
        """Catch up with the folder, then follow it until `stop` is set. A round that fails is logged and the
        next one goes on; without native events (their source failed) the periodic rescan finds the changes."""
        observer = self._start_events()
        try:
            caught_up = self._survive("catching up", self.catch_up)
            next_rescan = time.monotonic() + self.rescan_s
            while not stop.wait(self.poll_s):
                if not caught_up and time.monotonic() >= next_rescan:  # a failed catch-up is retried at rescans
                    caught_up = self._survive("catching up", self.catch_up)
                if time.monotonic() >= next_rescan or self._rescan_due:
                    self._survive("rescanning", self._rescan)
                    next_rescan = time.monotonic() + self.rescan_s
                self._survive("indexing changes", self.tick)
        finally:
            if observer is not None:
                observer.stop()
                observer.join(timeout=5)

    def _start_events(self) -> FolderObserver | None:
        if not self.use_events or self.event_source is None:
            return None
        try:
            return self.event_source(self.folder, self._touch, self._folder_event)
        except Exception as error:  # noqa: BLE001 - e.g. the inotify watch limit: rescans still see every change
            logger.warning("watch: no native file events (%s); rescanning every %s s instead", error, self.rescan_s)
            return None

    def _survive(self, doing: str, round_: Callable[[], object]) -> bool:
        """Run one round; an error is logged and kept in `last_error`, and the watcher goes on. True if it ran."""
        try:
            round_()
        except Exception as error:  # noqa: BLE001 - one bad event must not end the watcher
            message = error.message if isinstance(error, VisualSearchError) else f"{type(error).__name__}: {error}"
            self.last_error = f"{doing}: {printable(message)}"
            # No immediate retry: an error that persists (a full disk) would otherwise repeat every poll; the next
            # periodic rescan looks again.
            logger.error("watch: %s (the previous state is kept; the watcher goes on)", self.last_error)
            return False
        finally:
            self._heartbeat = time.monotonic()
        return True

    def catch_up(self) -> WatchReport:
        """Index every new or changed file now (no settling: nothing is known to be mid-write at start) and remove
        indexed keys of this folder whose file is gone, e.g. after a crash or changes made while not watching."""
        self._reload_labels_if_changed()
        present = set(self.store.list_keys())
        gone = [key for key in self._keys_indexed_from_this_folder() if key not in present]
        report = WatchReport()
        self._index_keys(sorted(present), report)
        self._remove_keys(gone, report)
        self._rescan_due = False
        self._report(report)
        return report

    def tick(self) -> WatchReport:
        """One round: take the events' keys, index the files that settled, remove the keys whose file is gone."""
        if self._reload_labels_if_changed():
            self._pending.update({key: (None, time.monotonic()) for key in self._indexed})
        with self._touched_lock:
            touched, self._touched = self._touched, set()
        now = time.monotonic()
        for key in touched:
            self._pending.setdefault(key, (None, now))
        ready, gone = [], []
        for key, (seen, since) in list(self._pending.items()):
            current = self._stat(key)
            if current is None:
                gone.append(key)
            elif current != seen:
                self._pending[key] = (current, now)  # still changing: the settle clock starts again
            elif now - since >= self.settle_s:
                ready.append(key)
        report = WatchReport()
        for key in ready + gone:
            self._pending.pop(key, None)
        self._index_keys(ready, report)
        self._remove_keys([key for key in gone if key in self._indexed or self._is_indexed(key)], report)
        self._report(report)
        return report

    # -- internals ------------------------------------------------------------------------------------

    def _rescan(self) -> None:
        """The safety net: queue every file whose stat differs from when it was indexed, and every vanished key."""
        self._rescan_due = False
        present = set(self.store.list_keys())
        now = time.monotonic()
        for key in present:
            if self._indexed.get(key) != self._stat(key):
                self._pending.setdefault(key, (None, now))
        for key in set(self._indexed) - present:
            self._pending.setdefault(key, (None, now))

    def _index_keys(self, keys: list[str], report: WatchReport) -> None:
        for start in range(0, len(keys), _ROUND_BATCH):  # a heartbeat per batch: a long catch-up is not "stuck"
            self._index_batch(keys[start : start + _ROUND_BATCH], report)
            self._heartbeat = time.monotonic()

    def _index_batch(self, keys: list[str], report: WatchReport) -> None:
        if not keys:
            return
        stats = {key: stat for key in keys if (stat := self._stat(key)) is not None}
        items = [self._item(key) for key in stats]
        try:
            outcome = self.writer.index_items(items)
        except VisualSearchError as error:  # e.g. the model service is down: retry these at the next rescan
            logger.warning("watch: could not index %d files: %s", len(items), error.message)
            self._rescan_due = True
            return
        failed = {failure.key: failure.reason for failure in outcome.failed}
        for item in items:
            self._indexed[item.key] = stats[item.key]  # a failed file is not retried until it changes again
            if item.key in failed:
                report.failed.append(f"{item.key}: {failed[item.key]}")
            else:
                report.indexed.append(item.key)

    def _remove_keys(self, keys: list[str], report: WatchReport) -> None:
        if not keys:
            return
        self.writer.remove(keys)
        for key in keys:
            self._indexed.pop(key, None)
        report.removed.extend(keys)

    def _item(self, key: str) -> IndexItem:
        uri = self.store.uri(key)
        return IndexItem.listed(key, uri, functools.partial(self.store.read, key), self._labels.get(Path(uri)))

    def _stat(self, key: str) -> Stat | None:
        return self.store.stat(key)

    def _is_indexed(self, key: str) -> bool:
        found = self.writer.index.get([key]).get(key)
        return found is not None and found.uri == self.store.uri(key)

    def _keys_indexed_from_this_folder(self) -> list[str]:
        keys, offset = [], 0
        while True:
            page = self.writer.index.list_records(offset=offset, limit=MAX_PAGE)
            keys += [record.key for record in page.records if record.uri == self._uri_or_none(record.key)]
            offset += len(page.records)
            if not page.records or offset >= page.total:
                return keys

    def _uri_or_none(self, key: str) -> str | None:
        try:
            return self.store.uri(key)
        except VisualSearchError:
            return None

    def _reload_labels_if_changed(self) -> bool:
        if self.labels_csv is None:
            return False
        try:
            info = self.labels_csv.stat()
            current = (info.st_size, info.st_mtime_ns)
        except OSError:
            current = None
        if current == self._labels_stat:
            return False
        try:
            entries = read_catalogue_csv(self.labels_csv) if current else []
        except VisualSearchError as error:
            # A CSV mid-save, or not a CSV at all (bad bytes, a FIFO, an over-long field): keep the labels we have,
            # and do not read it again until it changes.
            self._labels_stat = current
            self.last_error = f"labels: {printable(error.message)}"
            logger.error("watch: %s (the previous labels are kept)", self.last_error)
            return False
        self._labels_stat = current
        self._labels = {entry.path: entry for entry in entries}
        return True

    def _report(self, report: WatchReport) -> None:
        if report.indexed or report.removed or report.failed:
            self.on_change(report)

    def _touch(self, key: str) -> None:
        with self._touched_lock:
            self._touched.add(key)

    def _folder_event(self) -> None:
        self._rescan_due = True
