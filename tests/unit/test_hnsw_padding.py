"""The HNSW graph pads vectors to faiss's SIMD width (zero columns change no inner product), and a graph saved
before padding existed still loads and answers."""

from __future__ import annotations

import numpy as np
import pytest

from visual_search.indexes.local.hnsw import HnswGraph, HnswParams, padded_dimension

faiss = pytest.importorskip("faiss")

PRODUCT_DIMENSION = 1332  # 1280 appearance + 52 colour: not a multiple of 8 or 16


def unit_rows(count: int, dimension: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_padded_dimension_rounds_up_to_sixteen_and_keeps_multiples():
    assert padded_dimension(1332) == 1344
    assert padded_dimension(1280) == 1280
    assert padded_dimension(1) == 16


def test_a_padded_graph_scores_exactly_the_unpadded_inner_products(tmp_path):
    vectors = unit_rows(300, PRODUCT_DIMENSION)
    graph = HnswGraph.empty(PRODUCT_DIMENSION, HnswParams(storage="Flat"))
    graph.add(np.arange(1, 301), vectors, 300)
    query = vectors[7]
    seqs, scores = graph.search(query, 10)
    assert seqs[0] == 8  # itself
    np.testing.assert_allclose(scores, vectors[seqs - 1] @ query, atol=1e-5)
    # and after a save and a read-only load, as a reader opens it
    name = graph.save(tmp_path)
    reader = HnswGraph.load(tmp_path / name, 300, HnswParams(storage="Flat"), read_only=True)
    assert list(reader.search(query, 10)[0]) == list(seqs)


def test_a_graph_saved_unpadded_still_answers(tmp_path):
    vectors = unit_rows(200, PRODUCT_DIMENSION, seed=1)
    unpadded = faiss.IndexIDMap(faiss.IndexHNSWFlat(PRODUCT_DIMENSION, 16, faiss.METRIC_INNER_PRODUCT))
    unpadded.add_with_ids(vectors, np.arange(1, 201, dtype=np.int64))
    faiss.write_index(unpadded, str(tmp_path / "old.faiss"))
    graph = HnswGraph.load(tmp_path / "old.faiss", 200, HnswParams(storage="Flat"))
    seqs, _ = graph.search(vectors[41], 5)
    assert seqs[0] == 42
    graph.add(np.arange(201, 211), unit_rows(10, PRODUCT_DIMENSION, seed=2), 210)  # the writer extends it
    assert graph.size == 210
