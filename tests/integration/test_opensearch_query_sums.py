"""Live learning's shared sums in OpenSearch (indexes/opensearch/query_sums.py) against the real node, as the AWS
functions use them: many instances (here threads, each with its own accumulator object and connection) update
one document at once, and the bounds must hold across them, not per instance."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest

from visual_search.core.errors import NotFoundError
from visual_search.core.ports import ClientQueries
from visual_search.indexes.opensearch.query_sums import OpenSearchQueryAccumulator
from visual_search.services.adaptation import LearningPolicy, QueryDomainLearner

DIMENSION = 32
MODEL_APPEARANCE = 1280  # the default model's: a realistic document size, so updates really overlap


@pytest.fixture
def url(opensearch_url):
    location = f"{opensearch_url}/sums-{uuid.uuid4().hex[:10]}"
    yield location
    OpenSearchQueryAccumulator(location).drop()


def unit_rows(count: int, seed: int, dimension: int = DIMENSION) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, dimension))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def run_threads(targets) -> list[BaseException]:
    failures: list[BaseException] = []

    def guarded(target):
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failures.append(error)

    threads = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return failures


def test_concurrent_updates_from_many_instances_all_land_exactly_once(url):
    OpenSearchQueryAccumulator(url, create=True)
    instances, updates = 8, 12
    rows = {n: unit_rows(updates, seed=n, dimension=MODEL_APPEARANCE) for n in range(instances)}

    def instance(n: int):
        def run():
            own = OpenSearchQueryAccumulator(url)  # its own connection, as another Lambda instance has
            for number, row in enumerate(rows[n]):
                assert own.add([ClientQueries(f"client-{n}-{number}", 1, row)], per_client=5) == 1
            own.close()

        return run

    assert not run_threads([instance(n) for n in range(instances)])
    state = OpenSearchQueryAccumulator(url).state()
    assert state.count == state.window_accepted == instances * updates
    np.testing.assert_allclose(state.total, sum(r.sum(axis=0) for r in rows.values()), atol=1e-6)


def test_one_clients_share_holds_across_instances_that_share_the_salt(url):
    OpenSearchQueryAccumulator(url, create=True)
    policy = LearningPolicy(refit_every=100, max_step=0.2, max_client_share=0.05)  # 5 queries a window
    burst = unit_rows(40, seed=7)

    def instance(n: int):
        def run():
            learner = QueryDomainLearner(
                policy,
                colour_dimension=0,
                accumulator=OpenSearchQueryAccumulator(url),
                client_salt=b"stack-id",
                flush_every=4,
                refits_here=False,
            )
            for row in burst[n * 10 : n * 10 + 10]:
                learner.observe(row, client="198.51.100.66")
            learner.flush()

        return run

    assert not run_threads([instance(n) for n in range(4)])  # 4 instances, 10 searches each, one client
    state = OpenSearchQueryAccumulator(url).state()
    assert (state.count, state.window_refused) == (policy.per_client, 40 - policy.per_client)
    assert np.linalg.norm(state.total) <= policy.per_client + 1e-9


def test_a_freeze_or_reset_on_one_instance_applies_to_every_instance(url):
    OpenSearchQueryAccumulator(url, create=True)

    def learner() -> QueryDomainLearner:
        return QueryDomainLearner(
            LearningPolicy(refit_every=10, max_client_share=1.0),
            colour_dimension=0,
            accumulator=OpenSearchQueryAccumulator(url),
            client_salt=b"stack-id",
            flush_every=2,
            refits_here=False,
        )

    first, second = learner(), learner()
    first.freeze()
    for row in unit_rows(4, seed=1):
        second.observe(row, client="a")
    assert second.state()["frozen"] and second.state()["queries_counted"] == 0
    first.unfreeze()
    for row in unit_rows(4, seed=2):
        second.observe(row, client="a")
    assert first.state()["queries_counted"] == 4
    second.reset()
    assert first.state()["queries_counted"] == 0 and first.state()["queries_since_refit"] == 0
    first.refit()  # where refits run elsewhere: a request the refit function honours
    assert second.state()["refit_requested"] is True


def test_the_search_function_side_never_creates_the_side_index_and_loses_only_its_buffer(url, caplog):
    """Its role may only update documents; an index OpenSearch created on the fly would be mapped dynamically."""
    searches_side = OpenSearchQueryAccumulator(url)
    with pytest.raises(NotFoundError, match="refit function"):
        searches_side.add([ClientQueries("a", 1, unit_rows(1, seed=3)[0])], per_client=5)
    learner = QueryDomainLearner(
        LearningPolicy(refit_every=10, max_client_share=1.0),
        colour_dimension=0,
        accumulator=searches_side,
        flush_every=2,
        refits_here=False,
    )
    for row in unit_rows(2, seed=4):
        assert learner.observe(row, client="a")  # the search itself never fails
    assert "live learning dropped 2 queries" in caplog.text
    assert learner.state()["queries_counted"] == 0 and learner.state()["queries_buffered_here"] == 0
    assert not OpenSearchQueryAccumulator(url)._exists()
    OpenSearchQueryAccumulator(url, create=True)  # the refit function's first run
    for row in unit_rows(2, seed=5):
        learner.observe(row, client="a")
    assert learner.state()["queries_counted"] == 2
