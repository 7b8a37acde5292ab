"""The embedded index across processes: one writer at a time, readers see commits, SIGKILL loses nothing committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from visual_search.core.errors import IndexLockedError
from visual_search.core.records import ImageRecord
from visual_search.indexes.local.index import LocalIndex

DIMENSION = 32

# Upserts batches forever, printing each batch number only after upsert() has returned (committed).
# A low ANN threshold makes graph saves happen too, so a kill can land in the middle of one.
WRITER_LOOP = textwrap.dedent(
    """
    import sys
    import numpy as np
    from visual_search.indexes.local.index import LocalIndex
    from visual_search.core.records import ImageRecord

    index = LocalIndex(sys.argv[1], model_id="m", dimension=32, writable=True, ann_threshold=300)
    rng = np.random.default_rng(0)
    batch = 0
    while True:
        vectors = rng.standard_normal((25, 32)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        keys = [f"b{batch}-{i}" for i in range(25)]
        index.upsert([ImageRecord(key, "/x", "0" * 64, 1, 1) for key in keys], vectors)
        if batch % 7 == 3:
            index.upsert([ImageRecord(f"b{batch - 1}-0", "/y", "1" * 64, 2, 2)], vectors[:1])  # a replace
        print(batch, flush=True)
        batch += 1
    """
)

# Holds the writer lock until its stdin closes.
LOCK_HOLDER = textwrap.dedent(
    """
    import sys
    from visual_search.indexes.local.index import LocalIndex

    index = LocalIndex(sys.argv[1], model_id="m", dimension=32, writable=True)
    print("locked", flush=True)
    sys.stdin.read()
    """
)

# Answers each line on stdin with the count and the key nearest to the first axis.
READER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from visual_search.indexes.local.index import LocalIndex

    index = LocalIndex(sys.argv[1])
    for _ in sys.stdin:
        hits = index.search(np.eye(32, dtype=np.float32)[0], 1)
        print(index.count(), hits[0].record.key if hits else "-", flush=True)
    """
)


def start(script: str, directory) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def record(key: str) -> ImageRecord:
    return ImageRecord(key, f"/photos/{key}.jpg", "0" * 64, 1, 1)


def test_a_second_writer_process_is_refused_with_the_directory_and_holder_pid(tmp_path):
    holder = start(LOCK_HOLDER, tmp_path / "index")
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError) as refused:
            LocalIndex(tmp_path / "index", model_id="m", dimension=DIMENSION, writable=True)
        assert str(tmp_path / "index") in str(refused.value)
        assert f"process {holder.pid}" in str(refused.value)
    finally:
        holder.kill()
        holder.wait()


def test_the_writer_lock_is_released_when_its_process_is_killed(tmp_path):
    holder = start(LOCK_HOLDER, tmp_path / "index")
    assert holder.stdout.readline().strip() == "locked"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    LocalIndex(tmp_path / "index", model_id="m", dimension=DIMENSION, writable=True).close()


def test_a_reader_process_sees_each_commit_of_the_writer(tmp_path):
    writer = LocalIndex(tmp_path / "index", model_id="m", dimension=DIMENSION, writable=True)
    first_axis = np.eye(DIMENSION, dtype=np.float32)
    writer.upsert([record("second-axis")], first_axis[1:2])
    reader = start(READER, tmp_path / "index")
    try:
        answers = []
        for change in (
            lambda: None,
            lambda: writer.upsert([record("first-axis")], first_axis[0:1]),
            lambda: writer.delete(["first-axis"]),
        ):
            change()
            reader.stdin.write("search\n")
            reader.stdin.flush()
            answers.append(reader.stdout.readline().split())
        assert answers == [["1", "second-axis"], ["2", "first-axis"], ["1", "second-axis"]]
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
        writer.close()


@pytest.mark.parametrize("acknowledged_batches_before_kill", [3, 17, 40])
def test_after_sigkill_mid_write_the_index_is_intact_and_holds_every_acknowledged_batch(
    tmp_path, acknowledged_batches_before_kill
):
    writer = start(WRITER_LOOP, tmp_path / "index")
    for _ in range(acknowledged_batches_before_kill):
        assert writer.stdout.readline(), writer.stderr.read()
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    acknowledged = acknowledged_batches_before_kill + len(writer.stdout.read().split())

    index = LocalIndex(tmp_path / "index", writable=True, ann_threshold=300)
    try:
        assert index.check_integrity() == []
        keys = [f"b{batch}-{i}" for batch in range(acknowledged) for i in range(25)]
        assert set(index.get(keys)) == set(keys)
        assert index.count() in (len(keys), len(keys) + 25)  # the batch in flight is all there or not at all
        vector = index.get_vector(keys[-1])
        assert index.search(vector, 1)[0].record.key == keys[-1]
    finally:
        index.close()
