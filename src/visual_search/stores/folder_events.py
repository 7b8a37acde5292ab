"""Native file events for a watched folder (watchdog: inotify, FSEvents, ReadDirectoryChangesW), reduced to the
keys they touch. The events only say where to look; what changed is decided by stat-ing the files."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from visual_search.core.images import IMAGE_SUFFIXES
from visual_search.core.keys import key_problem, printable

logger = logging.getLogger(__name__)


def start_observer(folder: Path, on_key: Callable[[str], None], on_folder_event: Callable[[], None]):
    """Start a watchdog observer thread on `folder` (recursive). `on_key(key)` gets the key of each image file an
    event names (both ends of a move); `on_folder_event()` is called for folder events, whose files' own events
    may not come. Returns the observer (call stop() and join() on it)."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event):
            if event.is_directory:
                on_folder_event()
                return
            if event.event_type in ("opened", "closed_no_write"):
                return
            for path in (event.src_path, getattr(event, "dest_path", "")):
                key = key_of(folder, path)
                if key is not None:
                    on_key(key)

    observer = Observer()
    observer.schedule(Handler(), str(folder), recursive=True)
    observer.daemon = True
    observer.start()
    return observer


def key_of(folder: Path, path: str | bytes) -> str | None:
    """The key of an image file under `folder`, as `index DIR` makes it (the relative path); None for hidden files,
    other suffixes, places outside the folder and names no key may have (logged)."""
    if not path:
        return None
    file = Path(os.fsdecode(path))
    try:
        relative = file.relative_to(folder)
    except ValueError:
        return None
    if any(part.startswith(".") for part in relative.parts) or not file.name.lower().endswith(IMAGE_SUFFIXES):
        return None
    key = relative.as_posix()
    problem = key_problem(key)  # the key check of every entry (core/keys.py), as the folder's listing applies it
    if problem:
        logger.warning("watch: skipped %s: %s", printable(str(path)), problem)
        return None
    return key
