"""Every hostile file of the corpus, added through POST /items: the same status and code as /search gives it,
never a 5xx or a stack trace, nothing stored and the index unchanged. Also: an index the routes opened for
writing is released when the server stops."""

from __future__ import annotations

import shutil

import pytest
from corpus import FILE_CASES, MULTIPART, multipart_body
from fakes import HistogramEmbedder
from fastapi.testclient import TestClient
from hostile_support import IndexSnapshot, assert_no_stack_trace

from visual_search.core.errors import IndexLockedError
from visual_search.core.settings import Settings
from visual_search.indexes.local.index import LocalIndex
from visual_search.server.app import create_app
from visual_search.services.search import SearchService

pytestmark = pytest.mark.timeout(120)
KEY = "hostile-items-key"
BAD_FILES = [case for case in FILE_CASES if not case.expected.ok]


@pytest.fixture(scope="module")
def own_index_dir(hostile_index_dir, tmp_path_factory):
    """A copy of the hostile index: this module opens it for writing, which the shared one must never be."""
    directory = tmp_path_factory.mktemp("items-index") / "index"
    shutil.copytree(hostile_index_dir, directory)
    return directory


@pytest.fixture(scope="module")
def served(own_index_dir, tmp_path_factory):
    uploads = tmp_path_factory.mktemp("uploads")
    settings = Settings(index=str(own_index_dir), api_key=KEY, image_store=str(uploads))
    service = SearchService(HistogramEmbedder(), LocalIndex(own_index_dir, writable=False))  # as `serve` opens it
    app = create_app(settings, search_service=service, frontend_dir=tmp_path_factory.mktemp("no-ui"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, uploads, IndexSnapshot.of(own_index_dir)
    service.index.close()


@pytest.mark.parametrize("case", BAD_FILES, ids=[case.name for case in BAD_FILES])
def test_a_hostile_file_is_refused_as_search_refuses_it_and_nothing_is_stored(served, own_index_dir, case):
    client, uploads, before = served
    body = multipart_body(
        {"key": f"hostile/{case.name}.jpg", "label": "x"},
        {"file": (case.filename, case.data, "application/octet-stream")},
    )
    response = client.post("/items", content=body, headers={"Content-Type": MULTIPART, "X-API-Key": KEY})
    assert response.status_code < 500, response.text[:300]
    assert_no_stack_trace(response.text)
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (case.expected.status, case.expected.code)
    assert not [path for path in uploads.rglob("*") if path.is_file()], "a refused file was stored"
    assert IndexSnapshot.of(own_index_dir) == before, "a refused file changed the index"


def test_the_writer_the_routes_opened_is_released_when_the_server_stops(hostile_index_dir, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(hostile_index_dir, index_dir)
    settings = Settings(index=str(index_dir), api_key=KEY, image_store=str(tmp_path / "uploads"))
    service = SearchService(HistogramEmbedder(), LocalIndex(index_dir, writable=False))
    with TestClient(create_app(settings, search_service=service, frontend_dir=tmp_path / "none")) as client:
        assert client.delete("/items/never-indexed.jpg", headers={"X-API-Key": KEY}).status_code == 404
        with pytest.raises(IndexLockedError):  # while it runs, another writer is refused: one writer per index
            LocalIndex(index_dir, writable=True)
    LocalIndex(index_dir, writable=True).close()  # IndexLockedError if the server had kept the writer lock
    service.index.close()
