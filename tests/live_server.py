"""Test helpers: index a folder of photos into an in-memory service, and run an ASGI app on a free loopback port."""

from __future__ import annotations

import csv
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fakes import HistogramEmbedder

from visual_search.indexes.local.index import LocalIndex
from visual_search.services.indexing import IndexingService, IndexItem
from visual_search.services.search import SearchService


def index_folder(folder: Path, index_dir: Path, embedder=None, labels: dict[str, str] | None = None) -> SearchService:
    """A SearchService over a new LocalIndex in `index_dir` holding every image in `folder` (keys relative to it),
    labelled from `labels` by key. The index stays open for writing, which searches do not mind."""
    embedder = embedder or HistogramEmbedder()
    index = LocalIndex(index_dir, model_id=embedder.model_id, dimension=embedder.dimension, writable=True)
    labels = labels or {}
    items = [
        IndexItem(
            key=path.relative_to(folder).as_posix(),
            uri=str(path),
            read=path.read_bytes,
            label=labels.get(path.relative_to(folder).as_posix()),
        )
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    report = IndexingService(embedder, index, batch_size=16, workers=2).index_items(items)
    assert not report.failed, report.failed
    return SearchService(embedder, index)


def read_labels(csv_path: Path, key_prefix: str = "images/") -> dict[str, str]:
    """{key: label} from a path,label CSV, keys made relative to the images folder."""
    with csv_path.open(newline="") as handle:
        return {row["path"].removeprefix(key_prefix): row["label"] for row in csv.DictReader(handle)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Runs `app` with uvicorn in a daemon thread (on `port`, else a free one); yields its base URL and stops it
    afterwards."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
