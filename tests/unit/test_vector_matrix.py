"""VectorMatrix.top_k against brute force: every combination of a tail start, a filter and exclusions."""

from __future__ import annotations

import numpy as np
import pytest

from visual_search.indexes.local.matrix import VectorMatrix

DIMENSION = 24


@pytest.fixture
def matrix_and_rows():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((400, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    seqs = np.arange(1, 801, 2, dtype=np.int64)  # gaps, as removals and replacements leave
    matrix = VectorMatrix(DIMENSION)
    matrix.append(seqs, vectors)
    matrix.remove([seqs[5], seqs[300]])
    return matrix, seqs, vectors, rng


@pytest.mark.parametrize("after_seq", [0, 1, 399, 700, 799, 900])
@pytest.mark.parametrize("filtered", [False, True])
@pytest.mark.parametrize("excluding", [False, True])
def test_top_k_is_the_exact_best_of_the_rows_it_may_use(matrix_and_rows, after_seq, filtered, excluding):
    matrix, seqs, vectors, rng = matrix_and_rows
    query = vectors[rng.integers(400)] + 0.1 * rng.standard_normal(DIMENSION).astype(np.float32)
    only = np.sort(rng.choice(seqs, 150, replace=False)) if filtered else None
    excluded = rng.choice(seqs, 20, replace=False) if excluding else None
    found, scores = matrix.top_k(query, 10, only_seqs=only, after_seq=after_seq, excluded_seqs=excluded)
    usable = (seqs > after_seq) & ~np.isin(seqs, [seqs[5], seqs[300]])
    if only is not None:
        usable &= np.isin(seqs, only)
    if excluded is not None:
        usable &= ~np.isin(seqs, excluded)
    exact = vectors[usable] @ query
    expected = seqs[usable][np.lexsort((seqs[usable], -exact))][:10]
    assert found.tolist() == expected.tolist()
    np.testing.assert_allclose(scores, np.sort(exact)[::-1][: len(expected)], rtol=1e-5, atol=1e-6)
