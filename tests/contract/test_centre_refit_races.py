"""A refit of the query-domain centre loses no item and races no writer (issue 20), on both backends.

Embedded: the refit runs on the writer (serialised with its other writes by the index's mutex; another process
is refused by the writer lock) while a thread keeps upserting, with an HNSW graph being rebuilt. OpenSearch: the
refit runs from another client (another process, as the AWS functions are) while one keeps upserting; every
document must end projected with the final centre from its newest raw vector.
"""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from visual_search.core.centre import fit_centre, project
from visual_search.core.colour import COLOUR_DIMENSION, colour_model_id, signatures
from visual_search.core.errors import IndexLockedError
from visual_search.core.records import ImageRecord

APPEARANCE = 24
MODEL = colour_model_id("race-model")
DIMENSION = APPEARANCE + COLOUR_DIMENSION


def rows(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    appearance = rng.normal(size=(count, APPEARANCE))
    appearance[:, 0] += 3.0
    appearance /= np.linalg.norm(appearance, axis=1, keepdims=True)
    colours = np.abs(rng.normal(size=(count, COLOUR_DIMENSION)))
    colours /= np.linalg.norm(colours, axis=1, keepdims=True)
    return signatures(appearance.astype(np.float32), colours.astype(np.float32))


def records(start: int, count: int) -> list[ImageRecord]:
    return [ImageRecord(f"k{i:05d}", f"/p/{i}", f"h{i}", 1, 1) for i in range(start, start + count)]


def centres(count: int):
    return [fit_centre(rows(30, seed=100 + n), COLOUR_DIMENSION) for n in range(count)]


def write_batches(index, batches: int, size: int, failures: list, started: threading.Event) -> np.ndarray:
    written = []
    try:
        for batch in range(batches):
            vectors = rows(size, seed=batch)
            index.upsert(records(batch * size, size), vectors)
            written.append(vectors)
            started.set()
            time.sleep(0.02)  # spreads the writes over the refits
    except BaseException as error:  # noqa: BLE001 - reported by the test
        failures.append(error)
    return np.concatenate(written) if written else np.zeros((0, DIMENSION), np.float32)


def test_embedded_refits_during_writes_lose_nothing_and_end_with_the_last_centre(tmp_path):
    from visual_search.indexes.local.index import LocalIndex

    index = LocalIndex(tmp_path / "i", model_id=MODEL, dimension=DIMENSION, writable=True, ann_threshold=60)
    failures: list = []
    written: list[np.ndarray] = []
    started = threading.Event()
    writer = threading.Thread(target=lambda: written.append(write_batches(index, 60, 5, failures, started)))
    writer.start()
    started.wait(30)
    fitted = centres(4)
    for centre in fitted:
        index.set_centre(centre)
        with pytest.raises(IndexLockedError):  # another process cannot refit (or write) meanwhile
            LocalIndex(tmp_path / "i", writable=True)
    assert writer.is_alive(), "the refits must overlap the writes, or this test proves nothing"
    writer.join()
    assert not failures
    final = fitted[-1]
    vectors = written[0]
    assert index.count() == 300
    index.optimize()
    assert index.ann_size > 0, "the graph must have been rebuilt with the centre"
    reader = LocalIndex(tmp_path / "i")  # another process's view
    stored = project(vectors, final, COLOUR_DIMENSION)
    for query in rows(5, seed=999):
        expected = np.argsort(-(stored @ project(query, final, COLOUR_DIMENSION)), kind="stable")[:5]
        for searcher in (index, reader):
            hits = searcher.search(query, 5, exact=True)
            assert [hit.record.key for hit in hits] == [f"k{i:05d}" for i in expected]
    assert reader.centre == final
    for number in (0, 77, 299):  # through the graph (projected with the same centre as the query)
        for searcher in (index, reader):
            hit = searcher.search(vectors[number], 1)[0]
            assert (hit.record.key, hit.score) == (f"k{number:05d}", pytest.approx(1.0, abs=1e-5))
    reader.close()
    index.close()


def test_opensearch_refits_from_another_client_during_writes_leave_every_document_current(opensearch_url):
    from visual_search.indexes.opensearch.index import OpenSearchIndex

    url = f"{opensearch_url}/race-{uuid.uuid4().hex[:10]}"
    writer_index = OpenSearchIndex(url, model_id=MODEL, dimension=DIMENSION)
    refitter = OpenSearchIndex(url, model_id=MODEL, dimension=DIMENSION)
    try:
        failures: list = []
        written: list[np.ndarray] = []
        started = threading.Event()
        writer = threading.Thread(target=lambda: written.append(write_batches(writer_index, 12, 25, failures, started)))
        writer.start()
        started.wait(30)
        fitted = centres(3)
        for centre in fitted:
            refitter.set_centre(centre)
        assert writer.is_alive(), "the refits must overlap the writes, or this test proves nothing"
        writer.join()
        assert not failures
        final = fitted[-1]
        refitter.refresh()
        assert refitter.count() == 300
        answer = refitter._search(
            {"size": 1000, "query": {"match_all": {}}, "_source": ["key", "vector", "raw_vector", "centre_id"]},
            "check",
        )
        expected = project(written[0], final, COLOUR_DIMENSION)
        for hit in answer["hits"]["hits"]:
            source = hit["_source"]
            number = int(source["key"][1:])
            assert source["centre_id"] == final.centre_id, source["key"]
            np.testing.assert_allclose(source["vector"], expected[number], atol=1e-6)
    finally:
        refitter.drop()
        writer_index.close()
        refitter.close()
