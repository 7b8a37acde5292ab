"""One QueryAccumulator contract (core/ports.py), run against both: the local server's in-memory one and the AWS
functions' shared OpenSearch document (a real node). Live learning's bounds rest on these rules, so the painless
script and the Python code must agree on every one."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from visual_search.core.ports import ClientQueries, QueryAccumulator

DIMENSION = 6
WIRE = 1e-7  # the shared sums travel rounded to 8 decimals (query_sums._wire), finer than a float32 centre


@pytest.fixture(params=["memory", "opensearch"])
def accumulator(request):
    if request.param == "memory":
        from visual_search.services.query_accumulator import InMemoryQueryAccumulator

        yield InMemoryQueryAccumulator()
        return
    from visual_search.indexes.opensearch.query_sums import OpenSearchQueryAccumulator

    url = f"{request.getfixturevalue('opensearch_url')}/sums-{uuid.uuid4().hex[:10]}"
    shared = OpenSearchQueryAccumulator(url, create=True)
    yield shared
    shared.drop()
    shared.close()


def queries(client: str, count: int, seed: int) -> tuple[ClientQueries, np.ndarray]:
    rows = np.random.default_rng(seed).normal(size=(count, DIMENSION))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return ClientQueries(client, count, rows.sum(axis=0)), rows


def test_it_is_a_query_accumulator(accumulator):
    assert isinstance(accumulator, QueryAccumulator)
    state = accumulator.state()
    assert state.total is None and state.count == 0 and not state.frozen and state.refits == 0


def test_sums_and_counts_add_up_within_each_clients_share(accumulator):
    first, rows_a = queries("a", 2, seed=1)
    second, rows_b = queries("b", 3, seed=2)
    assert accumulator.add([first, second], per_client=3) == 5
    state = accumulator.state()
    assert (state.count, state.window_accepted, state.window_refused) == (5, 5, 0)
    np.testing.assert_allclose(state.total, rows_a.sum(axis=0) + rows_b.sum(axis=0), atol=WIRE)


def test_a_client_over_its_share_adds_the_mean_of_its_queries_times_what_is_left(accumulator):
    burst, rows = queries("greedy", 10, seed=3)
    assert accumulator.add([burst], per_client=4) == 4
    more, _ = queries("greedy", 5, seed=4)
    assert accumulator.add([more], per_client=4) == 0
    state = accumulator.state()
    assert (state.count, state.window_accepted, state.window_refused) == (4, 4, 11)
    np.testing.assert_allclose(state.total, rows.mean(axis=0) * 4, atol=WIRE)
    assert np.linalg.norm(state.total) <= 4 + 1e-9  # the client's weight: at most its share of unit vectors


def test_frozen_it_adds_nothing_and_unfrozen_it_adds_again(accumulator):
    accumulator.set_frozen(True)
    batch, rows = queries("a", 2, seed=5)
    assert accumulator.add([batch], per_client=10) == 0
    assert accumulator.state().frozen and accumulator.state().count == 0
    accumulator.set_frozen(False)
    assert accumulator.add([batch], per_client=10) == 2
    np.testing.assert_allclose(accumulator.state().total, rows.sum(axis=0), atol=WIRE)


def test_a_refit_closes_the_window_it_counted_and_clears_the_clients_shares(accumulator):
    batch, _ = queries("a", 3, seed=6)
    accumulator.add([batch], per_client=3)
    accumulator.request_refit()
    assert accumulator.state().refit_requested
    later, _ = queries("b", 2, seed=7)
    accumulator.add([later], per_client=3)  # arrives while the refit runs: stays in the next window
    accumulator.record_refit(3, centre_id="abc", step=0.125)
    state = accumulator.state()
    assert (state.window_accepted, state.count, state.refits, state.centre_id) == (2, 5, 1, "abc")
    assert state.last_step == pytest.approx(0.125) and state.last_refit_at is not None
    assert not state.refit_requested
    again, _ = queries("a", 3, seed=8)
    assert accumulator.add([again], per_client=3) == 3  # a new window: a new share


def test_a_failed_refit_keeps_the_sums_and_the_last_good_refit(accumulator):
    batch, rows = queries("a", 2, seed=9)
    accumulator.add([batch], per_client=5)
    accumulator.record_refit(2, centre_id="good", step=0.1)
    accumulator.record_refit(0, centre_id=None, step=0.0, error="BackendUnavailableError: node down")
    state = accumulator.state()
    assert (state.refits, state.centre_id, state.last_error) == (1, "good", "BackendUnavailableError: node down")
    np.testing.assert_allclose(state.total, rows.sum(axis=0), atol=WIRE)


def test_reset_forgets_the_sums_and_keeps_the_controls_and_history(accumulator):
    batch, _ = queries("a", 2, seed=10)
    accumulator.add([batch], per_client=5)
    accumulator.record_refit(2, centre_id="c1", step=0.2)
    accumulator.set_frozen(True)
    accumulator.reset()
    state = accumulator.state()
    assert state.total is None and (state.count, state.window_accepted, state.window_refused) == (0, 0, 0)
    assert state.frozen and state.refits == 1 and state.centre_id == "c1"


def test_vectors_of_another_model_start_the_sums_over_instead_of_mixing_with_them(accumulator):
    old, _ = queries("a", 2, seed=11)
    accumulator.add([old], per_client=5)
    accumulator.record_refit(2, centre_id="old-model", step=0.1)
    rows = np.random.default_rng(12).normal(size=(3, DIMENSION + 4))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    assert accumulator.add([ClientQueries("b", 3, rows.sum(axis=0))], per_client=5) == 3
    state = accumulator.state()
    assert (state.count, state.window_accepted, state.refits) == (3, 3, 1)
    np.testing.assert_allclose(state.total, rows.sum(axis=0), atol=WIRE)
