"""Test vectors for bench_scale.py that look like real image embeddings, generated without holding them in RAM.

Random uniform vectors are useless for judging ANN recall (every point is nearly equidistant from every other).
So the real thing is measured first: every photo of the clothing data set is embedded with the product's own
model (lite2-fp32, 1280-d) and cached as an .npy. A mixture of Gaussians is fitted to those vectors: k-means
clusters (faiss), each with its own mean and the covariance of its members along the top principal directions
of the whole set, plus isotropic noise of the left-over variance. Catalogue vectors are drawn from the mixture
(cluster chosen by its share of the photos), unit-normalised, and written chunk by chunk into a memory-mapped
.npy, so a million of them (5 GB float32) never sit in memory at once. Queries are noisy copies of held-out
draws (never in the catalogue): the held-out vector plus noise of a third of its cluster's spread, re-normalised,
like a second photo of the same product.

    python bench/scale_data.py --embed-clothing DATASET_DIR OUT.npy   # the real vectors (once, minutes)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CHUNK = 50_000
_PRINCIPAL_DIRECTIONS = 64


def embed_clothing(dataset: Path, out: Path, batch: int = 32) -> np.ndarray:
    """Embed every photo in DATASET/images with lite2-fp32 (the default model) and save float32 (n, 1280)."""
    from visual_search.core.errors import VisualSearchError
    from visual_search.core.images import decode_image
    from visual_search.embedders.onnx.embedder import OnnxEmbedder

    embedder = OnnxEmbedder.from_name("lite2-fp32", streams=2, intra_op_threads=1)
    paths = sorted((dataset / "images").glob("*.jpg"))
    rows = []
    for start in range(0, len(paths), batch):
        images = []
        for path in paths[start : start + batch]:
            try:
                images.append(decode_image(path.read_bytes(), min_size_px=embedder.spec.size_px).image)
            except VisualSearchError as error:  # a broken photo is skipped, as the indexer does
                print(f"skipped {path.name}: {error}", file=sys.stderr)
        if images:
            rows.append(embedder.embed(images))
    vectors = np.concatenate(rows).astype(np.float32)
    np.save(out, vectors)
    return vectors


@dataclass
class EmbeddingMixture:
    """Gaussian clusters fitted to real embeddings; `sample` draws unit vectors that resemble them."""

    centres: np.ndarray  # (clusters, d)
    weights: np.ndarray  # (clusters,)
    basis: np.ndarray  # (directions, d): top principal directions of the residuals
    spreads: np.ndarray  # (clusters, directions): per-cluster std along each direction
    noise_std: np.ndarray  # (clusters,): isotropic std of what the directions do not explain

    @classmethod
    def fit(cls, vectors: np.ndarray, clusters: int = 64, seed: int = 0) -> EmbeddingMixture:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        kmeans = faiss.Kmeans(vectors.shape[1], clusters, niter=25, seed=seed, verbose=False)
        kmeans.train(vectors)
        _, assignment = kmeans.index.search(vectors, 1)
        assignment = assignment[:, 0]
        residuals = vectors - kmeans.centroids[assignment]
        _, _, right = np.linalg.svd(residuals - residuals.mean(0), full_matrices=False)
        basis = right[:_PRINCIPAL_DIRECTIONS]
        projected = residuals @ basis.T
        spreads = np.zeros((clusters, len(basis)), dtype=np.float32)
        noise = np.zeros(clusters, dtype=np.float32)
        counts = np.bincount(assignment, minlength=clusters)
        for cluster in range(clusters):
            members = assignment == cluster
            if members.sum() < 2:
                spreads[cluster], noise[cluster] = projected.std(0), 0.01
                continue
            spreads[cluster] = projected[members].std(0)
            left_over = residuals[members] - projected[members] @ basis
            noise[cluster] = np.sqrt((left_over**2).mean())
        return cls(kmeans.centroids.copy(), counts / counts.sum(), basis.astype(np.float32), spreads, noise)

    def sample(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(unit vectors float32 (count, d), their clusters)."""
        clusters = rng.choice(len(self.weights), size=count, p=self.weights)
        along = rng.standard_normal((count, len(self.basis)), dtype=np.float32) * self.spreads[clusters]
        isotropic = rng.standard_normal((count, self.centres.shape[1]), dtype=np.float32)
        vectors = self.centres[clusters] + along @ self.basis + isotropic * self.noise_std[clusters, None]
        return _unit(vectors), clusters

    def noisy_copies(self, vectors: np.ndarray, clusters: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Second photos of the same products: a third of the cluster's own spread added, re-normalised."""
        along = rng.standard_normal((len(vectors), len(self.basis)), dtype=np.float32) * self.spreads[clusters] / 3
        isotropic = rng.standard_normal(vectors.shape, dtype=np.float32) * self.noise_std[clusters, None] / 3
        return _unit(vectors + along @ self.basis + isotropic)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def write_catalogue(mixture: EmbeddingMixture, count: int, path: Path, seed: int) -> np.ndarray:
    """Draw `count` catalogue vectors into a memory-mapped float32 .npy chunk by chunk; returns it (mapped)."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, mixture.centres.shape[1]))
    for start in range(0, count, _CHUNK):
        out[start : start + _CHUNK], _ = mixture.sample(min(_CHUNK, count - start), rng)
    out.flush()
    return np.load(path, mmap_mode="r")


def held_out_queries(mixture: EmbeddingMixture, count: int, seed: int) -> np.ndarray:
    """Noisy copies of `count` fresh draws, which the catalogue does not contain."""
    rng = np.random.default_rng(seed + 1_000_003)
    held_out, clusters = mixture.sample(count, rng)
    return mixture.noisy_copies(held_out, clusters, rng)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embed-clothing", nargs=2, metavar=("DATASET_DIR", "OUT_NPY"), required=True)
    arguments = parser.parse_args()
    dataset, out = map(Path, arguments.embed_clothing)
    vectors = embed_clothing(dataset, out)
    print(f"{len(vectors)} clothing vectors -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
