"""Live learning of the query-domain centre through the AWS functions (issue 20), in-process: S3 in moto, the
SageMaker endpoint on loopback, the real OpenSearch node. Searches through the search function's handler are
counted into the shared sums (indexes/opensearch/query_sums.py), the scheduled refit function's handler moves the
centre by at most the configured step, an operator controls learning through the search function's routes, and
a refit racing the index function loses no item."""

from __future__ import annotations

import base64
import json
import threading
import uuid

import numpy as np
import pytest
from aws_fixtures import BUCKET, load_event, s3_event, sqs_batch

from visual_search.aws import handlers
from visual_search.aws.local_invoke import invoke_local
from visual_search.core.centre import appearance_units, project
from visual_search.core.colour import colour_dimension_of
from visual_search.core.images import decode_image
from visual_search.core.ports import ClientQueries
from visual_search.core.settings import Settings
from visual_search.indexes.opensearch import centring
from visual_search.indexes.opensearch.index import OpenSearchIndex
from visual_search.indexes.opensearch.query_sums import OpenSearchQueryAccumulator

KEY = "operator-key-for-tests"
MAX_STEP = 0.05


@pytest.fixture
def stack(function_environment, bucket, demo_photos, opensearch_url):
    """The functions with live learning on (a refit every 4 queries, 2 per client, 2 queries per flush), over a
    new OpenSearch index holding the first four demo photos, indexed by the index function."""
    url = f"{opensearch_url}/aws-live-{uuid.uuid4().hex[:10]}"
    function_environment(
        VISUAL_SEARCH_INDEX=url,
        VISUAL_SEARCH_API_KEY=KEY,
        VISUAL_SEARCH_ADAPT_LIVE_EVERY="4",
        VISUAL_SEARCH_ADAPT_LIVE_CLIENT_SHARE="0.5",
        VISUAL_SEARCH_ADAPT_LIVE_MAX_STEP=str(MAX_STEP),
        VISUAL_SEARCH_ADAPT_LIVE_FLUSH_EVERY="2",
        VISUAL_SEARCH_ADAPT_LIVE_CLIENT_SALT="stack-uuid",
    )
    index_photos(bucket, demo_photos[:4])
    index = OpenSearchIndex.open_existing(url)
    yield index, OpenSearchQueryAccumulator(url)
    OpenSearchQueryAccumulator(url).drop()
    index.drop()
    index.close()


def index_photos(bucket, photos, keys=None, first_sequencer: int = 0) -> None:
    keys = keys or [photo.name for photo in photos]
    for key, photo in zip(keys, photos):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=photo.read_bytes())
    events = [
        [s3_event(BUCKET, key, created=True, sequencer=f"{first_sequencer + n:08d}")] for n, key in enumerate(keys)
    ]
    assert handlers.index_handler(sqs_batch(*events), None) == {"batchItemFailures": []}


def call(method: str, path: str, *, body: bytes = b"", content_type="application/json", client="203.0.113.7", key=KEY):
    event = load_event("search-key.json")
    event.update(rawPath=path, routeKey="$default", body=base64.b64encode(body).decode(), isBase64Encoded=True)
    event["requestContext"]["http"].update(method=method, path=path, sourceIp=client)
    event["headers"]["content-type"] = content_type
    if key:
        event["headers"]["x-api-key"] = key
    response = handlers.search_handler(event, None)
    return response["statusCode"], json.loads(response["body"] or "{}")


def search(photo, client: str) -> None:
    status, body = call("POST", "/search", body=photo.read_bytes(), content_type="image/jpeg", client=client)
    assert status == 200, body


def refit() -> dict:
    return handlers.refit_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)


def appearance(colour_embedder, photos) -> np.ndarray:
    signatures = colour_embedder.embed([decode_image(p.read_bytes()).image for p in photos])
    return appearance_units(signatures, colour_dimension_of(colour_embedder.model_id)).astype(np.float64)


def test_searches_accumulate_and_the_scheduled_refit_moves_the_centre_by_at_most_the_step(
    stack, demo_photos, colour_embedder
):
    index, _ = stack
    assert refit()["refitted"] is False  # its first run creates the side index; nothing is due yet
    first, second, third, fourth = demo_photos[4], demo_photos[5], demo_photos[0], demo_photos[1]
    for photo, client in ((first, "198.51.100.1"), (second, "198.51.100.1")):
        search(photo, client)  # one flush: both counted
    for photo, client in ((third, "198.51.100.2"), (fourth, "198.51.100.2")):
        search(photo, client)
    for photo in (first, second):
        search(photo, "198.51.100.1")  # this client's share (2 of 4) is used up: refused by the shared document
    status, state = call("GET", "/stats")
    assert status == 200 and state["centre"] is None
    learning = state["adaptation"]
    assert (learning["queries_counted"], learning["queries_refused_since_refit"]) == (4, 2)
    assert "198.51.100" not in json.dumps(state) and learning["refits"] == 0

    outcome = refit()
    assert outcome["refitted"] is True and outcome["refits"] == 1 and outcome["last_error"] is None
    target = appearance(colour_embedder, [first, second, third, fourth]).mean(axis=0)
    expected = target * (MAX_STEP / np.linalg.norm(target))  # from no centre, one capped step towards the mean
    assert np.linalg.norm(target) > MAX_STEP, "the bound must bite, or this test proves nothing"
    centre = index.centre
    assert centre is not None and centre.distance_to(None) == pytest.approx(MAX_STEP, abs=1e-6)
    np.testing.assert_allclose(centre.vector, expected, atol=1e-6)
    assert refit()["refitted"] is False  # nothing new: no refit

    _, learning = call("GET", "/adaptation")
    assert learning["centre_id"] == centre.centre_id and learning["queries_since_refit"] == 0
    handlers.reset_cached_services()  # a new instance reads the centre from `_meta` (running ones within 10 s)
    assert call("GET", "/stats")[1]["centre"]["centre_id"] == centre.centre_id


def test_an_operator_freezes_asks_for_a_refit_and_resets_through_the_search_function(stack, demo_photos):
    index, accumulator = stack
    refit()
    assert call("POST", "/adaptation", body=b'{"action": "freeze"}', key=None)[0] == 401
    status, state = call("POST", "/adaptation", body=b'{"action": "freeze"}')
    assert status == 200 and state["frozen"] is True and state["enabled"] is True
    for photo in demo_photos[4:6]:
        search(photo, "198.51.100.1")
    # The instance sends a due buffer beside its next search, or when an operator reads the state (as here).
    assert call("GET", "/adaptation")[1]["queries_buffered_here"] == 0
    assert accumulator.state().count == 0 and accumulator.state().window_refused == 2
    call("POST", "/adaptation", body=b'{"action": "unfreeze"}')
    for photo in demo_photos[4:6]:
        search(photo, "198.51.100.1")
    assert call("GET", "/adaptation")[1]["queries_buffered_here"] == 0
    assert accumulator.state().count == 2
    assert refit()["refitted"] is False and index.centre is None  # half a window: not due

    status, state = call("POST", "/adaptation", body=b'{"action": "refit"}')
    assert status == 200 and state["refit_requested"] is True and index.centre is None  # never in the request
    assert refit()["refitted"] is True
    assert index.centre is not None and index.centre.distance_to(None) <= MAX_STEP + 1e-6
    status, state = call("POST", "/adaptation", body=b'{"action": "reset"}')
    assert status == 200 and (state["queries_counted"], state["refits"], state["refit_requested"]) == (0, 1, False)


def test_a_refit_racing_the_index_function_loses_no_item_and_leaves_every_document_current(
    stack, bucket, demo_photos, colour_embedder
):
    index, accumulator = stack
    refit()
    keys = [f"race/{batch}-{n}.jpg" for batch in range(10) for n in range(6)]
    photos = [demo_photos[n % len(demo_photos)] for n in range(len(keys))]
    for key, photo in zip(keys, photos):
        bucket.put_object(Bucket=BUCKET, Key=key, Body=photo.read_bytes())
    failures: list = []
    started = threading.Event()

    def index_function():
        try:
            for batch in range(10):
                part = slice(batch * 6, batch * 6 + 6)
                events = [
                    [s3_event(BUCKET, key, created=True, sequencer=f"{100 + batch * 6 + n:08d}")]
                    for n, key in enumerate(keys[part])
                ]
                failures.extend(handlers.index_handler(sqs_batch(*events), None)["batchItemFailures"])
                started.set()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            failures.append(error)

    writer = threading.Thread(target=index_function)
    writer.start()
    started.wait(60)
    rng = np.random.default_rng(3)
    for number in range(3):  # three different centres, each from the shared sums, each asked for
        row = rng.normal(size=index.dimension)
        accumulator.add([ClientQueries(f"client-{number}", 1, row / np.linalg.norm(row))], per_client=2)
        accumulator.request_refit()
        assert refit()["refitted"] is True
    assert writer.is_alive(), "the refits must overlap the index function's writes, or this test proves nothing"
    writer.join(120)
    assert not failures
    final = index.centre
    assert final is not None and accumulator.state().refits == 3
    index.refresh()
    assert index.count() == 4 + len(keys)
    answer = index._search(
        {"size": 200, "query": {"match_all": {}}, "_source": ["key", "vector", "raw_vector", "centre_id"]}, "check"
    )
    photo_of = {**{photo.name: photo for photo in demo_photos[:4]}, **dict(zip(keys, photos))}
    embedded = {photo.name: row for photo, row in zip(demo_photos, appearance(colour_embedder, demo_photos))}
    assert len(answer["hits"]["hits"]) == len(photo_of)
    for hit in answer["hits"]["hits"]:
        source = hit["_source"]
        assert source["centre_id"] == final.centre_id, source["key"]
        raw = centring.raw_vector_of(source)
        np.testing.assert_allclose(raw, embedded[photo_of[source["key"]].name], atol=1e-6)  # the newest raw vector
        np.testing.assert_allclose(source["vector"], project(raw, final, 0), atol=1e-6)


def test_off_by_default_the_refit_function_touches_nothing_and_the_search_function_says_so(
    function_environment, opensearch_url
):
    url = f"{opensearch_url}/aws-off-{uuid.uuid4().hex[:10]}"
    assert invoke_local("refit", {}, Settings(index=url)) == {"enabled": False}
    assert not OpenSearchQueryAccumulator(url)._exists()  # no side index made, nothing read
    function_environment(VISUAL_SEARCH_INDEX=url)
    assert refit() == {"enabled": False}


def test_live_learning_over_an_embedded_index_is_refused_at_start_with_a_clear_reason(tmp_path, colour_embedder):
    from visual_search.bootstrap import build_image_store
    from visual_search.bootstrap.aws_runtime import build_search_function_runtime
    from visual_search.core.errors import InvalidSettingError
    from visual_search.indexes.local.index import LocalIndex
    from visual_search.services.search import SearchService

    index = LocalIndex(tmp_path / "index", model_id=colour_embedder.model_id, dimension=48, writable=True)
    settings = Settings(index=str(tmp_path / "index"), adapt_live_every=4)
    with pytest.raises(InvalidSettingError, match="OpenSearch"):
        build_search_function_runtime(
            settings, store=build_image_store(str(tmp_path)), search_service=SearchService(colour_embedder, index)
        )
    index.close()


def test_on_lambda_a_shutdown_signal_flushes_the_instances_buffer(stack, demo_photos, monkeypatch):
    import signal

    _, accumulator = stack
    refit()
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "stack-search")
    before_us, passed_on = signal.getsignal(signal.SIGTERM), []
    signal.signal(signal.SIGTERM, lambda signum, frame: passed_on.append(signum))  # what ran before: kept
    try:
        search(demo_photos[4], "198.51.100.1")  # a cold start (the handler installed), one search buffered
        assert accumulator.state().count == 0
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # what Lambda sends before it recycles the instance
        assert accumulator.state().count == 1 and passed_on == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before_us)


def test_a_refit_that_fails_is_recorded_and_raised_so_that_lambda_counts_an_error(stack):
    index, accumulator = stack
    refit()
    wrong = np.ones(index.dimension + 3) / np.sqrt(index.dimension + 3)  # sums that cannot centre this index
    accumulator.add([ClientQueries("client", 1, wrong)], per_client=2)
    accumulator.request_refit()
    with pytest.raises(handlers.RefitFailedError, match="ModelMismatchError"):
        refit()
    state = accumulator.state()
    assert state.last_error.startswith("ModelMismatchError") and state.refits == 0 and index.centre is None
    assert state.count == 1  # the sums are kept
    assert refit()["refitted"] is False  # Lambda's retries: nothing due, no second error


def test_before_the_first_image_the_refit_function_waits_without_an_error(function_environment, opensearch_url):
    url = f"{opensearch_url}/aws-new-{uuid.uuid4().hex[:10]}"
    function_environment(VISUAL_SEARCH_INDEX=url, VISUAL_SEARCH_ADAPT_LIVE_EVERY="4")
    assert refit() == {"enabled": True, "refitted": False, "index_ready": False}
    assert not OpenSearchQueryAccumulator(url)._exists()
