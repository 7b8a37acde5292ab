"""The single-writer lock of an embedded index directory: an flock on `write.lock` holding the writer's pid."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from visual_search.core.errors import IndexLockedError

LOCK_FILE_NAME = "write.lock"


class WriterLock:
    """Held by the one process allowed to write a directory; readers never take it.

    flock locks belong to an open file description, so the kernel releases this one when the holder closes
    it or dies (even by SIGKILL), and a second LocalIndex in the same process is refused like another process.
    Raises IndexLockedError naming the directory and, when it can be read, the holder's pid.
    """

    def __init__(self, directory: Path):
        self.path = directory / LOCK_FILE_NAME
        # O_RDWR without O_TRUNC: a refused opener must not erase the holder's pid before reading it.
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(descriptor)
            os.close(descriptor)
            raise IndexLockedError(_locked_message(directory, holder)) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        if self._descriptor is None:
            return
        # Clear the pid first so a stale number is never reported for a free directory.
        os.ftruncate(self._descriptor, 0)
        fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        os.close(self._descriptor)
        self._descriptor = None


def _locked_message(directory: Path, holder: int | None) -> str:
    """Who holds the lock and what to do, in words for someone at a terminal (not for a Python caller)."""
    if holder is None:
        who = "another process"
        stop = "wait for it to finish"
    else:
        command = _command_line(holder)
        who = f"process {holder}" + (f" ({command})" if command else "")
        stop = f"wait for it to finish, or stop it (kill {holder})"
    return (
        f"the index at {directory} is being written by {who}; {stop} and try again. Searching it does not need to wait."
    )


def _command_line(pid: int) -> str | None:
    """The holder's command line, shortened, where /proc tells it (Linux)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    words = [
        Path(word).name if index == 0 else word
        for index, word in enumerate(raw.decode(errors="replace").split("\0"))
        if word
    ]
    text = " ".join(words)
    return text[:117] + "..." if len(text) > 120 else text or None


def _read_pid(descriptor: int) -> int | None:
    text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
