"""Live learning of the query-domain centre (services/adaptation.py): what it keeps, when it refits, and how
little any burst of queries can move it."""

from __future__ import annotations

import numpy as np
import pytest

from visual_search.core.centre import Centre, fit_centre
from visual_search.core.errors import IndexLockedError, InvalidRequestError
from visual_search.indexes.local.index import LocalIndex
from visual_search.services.adaptation import LearningPolicy, QueryDomainLearner

DIMENSION = 16


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def shoppers(count: int, seed: int = 0, lean: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shared = np.zeros(DIMENSION)
    shared[0] = lean
    return unit(rng.normal(size=(count, DIMENSION)) + shared)


def learner(**policy) -> QueryDomainLearner:
    return QueryDomainLearner(LearningPolicy(**policy), colour_dimension=0)


def test_it_refits_after_the_configured_number_of_queries_towards_their_mean():
    learning = learner(refit_every=20, max_step=10.0, max_client_share=0.1)
    queries = shoppers(40)
    for n, query in enumerate(queries[:19]):
        learning.observe(query, client=f"c{n % 10}")
    assert learning.centre is None and learning.state()["queries_since_refit"] == 19
    learning.observe(queries[19], client="c9")
    assert learning.refits == 1
    np.testing.assert_allclose(learning.centre.vector, fit_centre(queries[:20], 0).vector, atol=1e-6)
    for n, query in enumerate(queries[20:]):
        learning.observe(query, client=f"c{n % 10}")
    assert learning.refits == 2 and learning.centre.photos == 40
    np.testing.assert_allclose(learning.centre.vector, fit_centre(queries, 0).vector, atol=1e-6)


def test_one_refit_moves_the_centre_by_at_most_max_step():
    learning = learner(refit_every=10, max_step=0.05, max_client_share=0.1)
    for n, query in enumerate(shoppers(30)):
        learning.observe(query, client=f"c{n % 10}")
    assert learning.refits == 3
    assert 0.1 < np.linalg.norm(learning.centre.vector) <= 0.15 + 1e-6  # 3 capped steps from none
    assert learning.state()["last_step"] == pytest.approx(0.05, abs=1e-5)


def test_one_client_cannot_fill_a_refit_window_however_many_queries_it_sends():
    learning = learner(refit_every=100, max_step=1.0, max_client_share=0.1)
    burst = shoppers(1000, seed=1, lean=-5.0)
    added = sum(learning.observe(query, client="10.0.0.66") for query in burst)
    assert added == 10  # its share of one window
    assert learning.refits == 0 and learning.centre is None
    assert learning.state()["queries_refused_since_refit"] == 990


def test_a_burst_of_many_clients_still_moves_the_centre_by_at_most_max_step_per_refit():
    learning = learner(refit_every=10, max_step=0.05, max_client_share=0.1)
    for n, query in enumerate(shoppers(50)):
        learning.observe(query, client=f"honest-{n}")
    honest = learning.centre
    for n, query in enumerate(shoppers(10, seed=5, lean=-8.0)):  # one window of a coordinated burst
        learning.observe(query, client=f"sybil-{n}")
    assert learning.centre.distance_to(honest) <= 0.05 + 1e-6


def test_frozen_learning_adds_nothing_and_reset_forgets_the_sums():
    learning = learner(refit_every=5, max_step=1.0, max_client_share=1.0)
    learning.freeze()
    assert not learning.observe(shoppers(1)[0], client="a")
    assert learning.state()["queries_counted"] == 0
    learning.unfreeze()
    for query in shoppers(3):
        learning.observe(query, client="a")
    assert learning.state()["queries_counted"] == 3
    learning.reset()
    assert learning.state()["queries_counted"] == 0 and learning.state()["queries_since_refit"] == 0


def test_the_state_holds_counts_and_never_a_vector_or_a_client():
    learning = learner(refit_every=2, max_step=1.0, max_client_share=1.0)
    for query in shoppers(2):
        learning.observe(query, client="203.0.113.9")
    text = repr(learning.state())
    assert "203.0.113.9" not in text and "array" not in text
    assert set(learning.state()) >= {"frozen", "queries_counted", "refits", "last_step", "centre_id"}


def test_refits_are_applied_to_the_index_and_a_locked_index_leaves_the_sums_for_later(tmp_path):
    directory = tmp_path / "index"
    with LocalIndex(directory, model_id="m", dimension=DIMENSION, writable=True) as index:
        learning = QueryDomainLearner(
            LearningPolicy(refit_every=4, max_step=1.0, max_client_share=1.0), colour_dimension=0, index=lambda: index
        )
        for query in shoppers(4):
            learning.observe(query, client="a")
        assert index.centre == learning.centre and index.centre is not None

    holder = LocalIndex(directory, writable=True)

    def locked():
        return LocalIndex(directory, writable=True)  # another process's writer holds the lock

    learning = QueryDomainLearner(
        LearningPolicy(refit_every=4, max_step=1.0, max_client_share=1.0), colour_dimension=0, index=locked
    )
    for query in shoppers(4, seed=3):
        learning.observe(query, client="a")
    assert learning.refits == 0 and "IndexLockedError" in learning.state()["last_error"]
    assert learning.state()["queries_counted"] == 4
    holder.close()
    assert isinstance(learning.refit(), Centre) and learning.refits == 1


def test_a_policy_that_cannot_bound_anything_is_refused():
    for bad in ({"refit_every": 0}, {"max_step": 0.0}, {"max_client_share": 0.0}, {"max_client_share": 1.5}):
        with pytest.raises(InvalidRequestError):
            LearningPolicy(**bad)


def test_index_locked_error_is_what_a_second_writer_gets(tmp_path):
    with LocalIndex(tmp_path / "i", model_id="m", dimension=DIMENSION, writable=True):
        with pytest.raises(IndexLockedError):
            LocalIndex(tmp_path / "i", writable=True)


class _RecordingAccumulator:
    """The in-memory accumulator, recording which thread each add ran on."""

    def __init__(self):
        from visual_search.services.query_accumulator import InMemoryQueryAccumulator

        self.inner = InMemoryQueryAccumulator()
        self.add_threads: list[str] = []

    def add(self, queries, per_client):
        import threading

        self.add_threads.append(threading.current_thread().name)
        return self.inner.add(queries, per_client)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_buffering_search_function_sends_a_due_buffer_beside_the_next_search_and_before_any_state_read():
    accumulator = _RecordingAccumulator()
    learning = QueryDomainLearner(
        LearningPolicy(refit_every=100),
        colour_dimension=0,
        accumulator=accumulator,
        flush_every=3,
        refits_here=False,
        flush_beside_searches=True,
    )
    queries = shoppers(7)
    for query in queries[:3]:
        assert learning.start_due_flush() is None  # nothing due yet
        learning.observe(query, "client-a")
    assert accumulator.add_threads == []  # the third query made the buffer due, and no search waited for it
    flushing = learning.start_due_flush()  # the fourth search starts: the buffer goes out beside it
    assert flushing is not None
    learning.observe(queries[3], "client-b")
    learning.finish_flush(flushing)
    assert len(accumulator.add_threads) == 1 and accumulator.add_threads[0].startswith("learning-flush")
    assert accumulator.inner.state().count == 3
    assert learning.state()["queries_counted"] == 4  # an operator's read first sends what this instance holds
    assert learning.state()["queries_buffered_here"] == 0
