"""Small deterministic stand-ins for the ports, for fast API tests (end-to-end tests use the real model)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from visual_search.core.images import PreprocessSpec, to_model_pixels


class HistogramEmbedder:
    """A colour-histogram Embedder: 4x4x4 RGB bins of a 64 px thumbnail, square-rooted and L2-normalised.

    The same image always gives the same unit vector (score 1.0 against itself); similar colours score high.
    """

    model_id = "fake-rgb-histogram-v1"
    dimension = 64
    spec = PreprocessSpec()

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.stack([self._embed_one(image) for image in images]).astype(np.float32)

    def _embed_one(self, image: Image.Image) -> np.ndarray:
        return _histogram(np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR), dtype=np.uint8))


class PixelHistogramEmbedder(HistogramEmbedder):
    """HistogramEmbedder's vectors of the model pixels (core/images.to_model_pixels), taken as the in-process
    model takes them: indexing hands it pixels, with two batches in flight (services/indexing)."""

    model_id = "fake-rgb-histogram-of-model-pixels-v1"

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_pixels([to_model_pixels(image, self.spec) for image in images])

    def embed_pixels(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([_histogram(np.asarray(image)) for image in pixels]).astype(np.float32)

    def embed_tensors(self, batch: np.ndarray) -> np.ndarray:
        std, mean = np.asarray(self.spec.std, np.float32), np.asarray(self.spec.mean, np.float32)
        return self.embed_pixels([np.round(t.transpose(1, 2, 0) * std + mean).astype(np.uint8) for t in batch])


def _histogram(pixels: np.ndarray) -> np.ndarray:
    bins = (pixels // 64).reshape(-1, 3).astype(np.int64)
    counts = np.bincount(bins[:, 0] * 16 + bins[:, 1] * 4 + bins[:, 2], minlength=64).astype(np.float64)
    vector = np.sqrt(counts)
    return vector / np.linalg.norm(vector)


class ColourGridEmbedder:
    """A tiny deterministic Embedder for tests that need no ONNX model: the image's 4x4 colour layout, centred
    and L2-normalised (48 dimensions). The same pixels give the same vector; different photos differ."""

    model_id = "test-colour-grid:1"
    dimension = 48
    spec = PreprocessSpec()

    def __init__(self):
        self.calls = 0

    def embed(self, images) -> np.ndarray:
        self.calls += 1
        rows = []
        for image in images:
            grid = np.asarray(image.convert("RGB").resize((4, 4), Image.Resampling.BOX), dtype=np.float32).ravel()
            grid = grid - grid.mean()
            rows.append(grid / max(float(np.linalg.norm(grid)), 1e-6))
        return np.stack(rows).astype(np.float32)


class DyingEventSource:
    """A folder watcher's event source (services/watching.EventSource) that ends the watcher's thread the way a
    fatal error would: it raises a BaseException the watcher must not swallow (SystemExit). Lets a test see what
    /health says about a dead watcher without the product shipping a way to kill it."""

    def __call__(self, folder, on_key, on_folder_event):
        raise SystemExit("simulated death of the watcher thread")


class HangingEventSource:
    """An event source that never returns until `release` is set: the watcher looks stuck (no rounds)."""

    def __init__(self):
        import threading

        self.release = threading.Event()

    def __call__(self, folder, on_key, on_folder_event):
        self.release.wait()
        return None


def indexed_hashes(index) -> dict[str, str]:
    """key -> content hash of every record a VectorIndex holds, read through the port's listing (by key)."""
    hashes: dict[str, str] = {}
    while True:
        page = index.list_records(offset=len(hashes), limit=500)
        hashes.update((record.key, record.content_hash) for record in page.records)
        if not page.records or len(hashes) >= page.total:
            return hashes


def indexed_keys(index) -> list[str]:
    """Every key a VectorIndex holds, in key order."""
    return list(indexed_hashes(index))
