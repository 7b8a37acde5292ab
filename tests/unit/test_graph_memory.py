"""A reader's graph in transparent huge pages answers exactly as faiss's own copy and as a map of the file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from visual_search.indexes.local import graph_memory, hnsw
from visual_search.indexes.local.graph_memory import huge_pages_offered, read_into_huge_pages
from visual_search.indexes.local.hnsw import HnswGraph, HnswParams

pytest.importorskip("faiss")

DIMENSION = 1332


def unit_rows(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def saved_graph(tmp_path) -> tuple[Path, np.ndarray]:
    vectors = unit_rows(2000, seed=3)
    graph = HnswGraph.empty(DIMENSION, HnswParams())
    graph.add(np.arange(1, 2001), vectors, 2000)
    return tmp_path / graph.save(tmp_path), vectors


def answers(graph: HnswGraph, queries: np.ndarray) -> list[tuple[list[int], list[float]]]:
    return [(seqs.tolist(), scores.tolist()) for seqs, scores in (graph.search(query, 20) for query in queries)]


def test_the_file_is_read_whole_and_exactly(tmp_path):
    content = np.random.default_rng(0).integers(0, 256, 5 * 2**20 + 123, dtype=np.uint8).tobytes()
    (tmp_path / "graph.faiss").write_bytes(content)
    assert read_into_huge_pages(tmp_path / "graph.faiss").tobytes() == content


def test_an_empty_or_missing_file_is_an_os_error(tmp_path):
    (tmp_path / "empty.faiss").write_bytes(b"")
    with pytest.raises(OSError, match="empty"):
        read_into_huge_pages(tmp_path / "empty.faiss")
    with pytest.raises(OSError):
        read_into_huge_pages(tmp_path / "missing.faiss")


def test_every_way_a_graph_is_loaded_gives_the_same_answers(saved_graph, monkeypatch):
    path, vectors = saved_graph
    queries = vectors[:25] + 0.05 * unit_rows(25, seed=4)
    own_copy = answers(HnswGraph.load(path, 2000, HnswParams()), queries)
    in_huge_pages = answers(HnswGraph.load(path, 2000, HnswParams(), read_only=True), queries)
    monkeypatch.setattr(hnsw, "huge_pages_offered", lambda: False)
    file_map = answers(HnswGraph.load(path, 2000, HnswParams(), read_only=True), queries)
    assert in_huge_pages == own_copy == file_map
    assert [seqs[0] for seqs, _ in own_copy] == list(range(1, 26))


def test_a_read_only_graph_refuses_to_grow(saved_graph):
    path, _ = saved_graph
    reader = HnswGraph.load(path, 2000, HnswParams(), read_only=True)
    with pytest.raises(RuntimeError, match="read-only"):
        reader.add(np.arange(2001, 2003), unit_rows(2, seed=5), 2002)
    assert reader.size == 2000


def test_the_bytes_sit_in_huge_pages_where_the_kernel_offers_them(tmp_path):
    if not huge_pages_offered():
        pytest.skip("no transparent huge pages here (not Linux, or switched off): graphs are mapped instead")
    (tmp_path / "graph.faiss").write_bytes(b"\1" * (16 * 2**20))
    memory = read_into_huge_pages(tmp_path / "graph.faiss")
    address = memory.ctypes.data
    mapping = next(
        block
        for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", Path("/proc/self/smaps").read_text())
        if int(block.split("-", 1)[0], 16) <= address < int(block.split("-", 1)[1].split()[0], 16)
    )
    huge_kib = int(re.search(r"AnonHugePages:\s+(\d+) kB", mapping).group(1))
    assert huge_kib >= 8 * 1024  # at least half of the 16 MB (its ends may not be 2 MB aligned)


def test_huge_pages_are_not_offered_when_the_kernel_switches_them_off(tmp_path, monkeypatch):
    setting = tmp_path / "enabled"
    setting.write_text("always madvise [never]\n")
    monkeypatch.setattr(graph_memory, "_THP_SETTING", setting)
    graph_memory.huge_pages_offered.cache_clear()
    try:
        assert not graph_memory.huge_pages_offered()
    finally:
        graph_memory.huge_pages_offered.cache_clear()


def test_without_room_for_a_private_copy_the_reader_maps_the_file(saved_graph, monkeypatch):
    path, vectors = saved_graph

    def no_memory(_path):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(hnsw, "read_into_huge_pages", no_memory)
    monkeypatch.setattr(hnsw, "huge_pages_offered", lambda: True)
    reader = HnswGraph.load(path, 2000, HnswParams(), read_only=True)
    assert reader.search(vectors[9], 1)[0].tolist() == [10]
