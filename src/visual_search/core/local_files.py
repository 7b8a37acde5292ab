"""Reading a local file that should be an image, without ever blocking or following the file into a device.

A FIFO, socket or device opened for reading can block for ever (a FIFO with no writer) or stream without end, so
every local read in the product goes through `read_regular_file`: it opens without blocking, checks on the open
descriptor (no race with a rename) that it is a regular file, and only then reads.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from visual_search.core.errors import InvalidRequestError, NotFoundError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def kind_of(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO (named pipe)", "a folder", ...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def regular_file_problem(path: str | Path) -> str | None:
    """Why `path` is not a readable regular file (following symlinks), without opening it; None when it is."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "it does not exist (or is a broken link)"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or 'an error of the file system'})"
    kind = kind_of(mode)
    return f"it is {kind}, not an image file" if kind else None


def read_regular_file(path: str | Path) -> bytes:
    """The bytes of a regular file. NotFoundError when missing; InvalidRequestError (naming what it is) for a
    folder, FIFO, socket or device; OSError for other failures of the file system. The messages do not repeat
    the path: the caller shows it, as it already does for its other reasons."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise NotFoundError("no such file") from None
    except IsADirectoryError:
        raise InvalidRequestError("it is a folder, not an image file") from None
    try:
        kind = kind_of(os.fstat(descriptor).st_mode)
        if kind:
            raise InvalidRequestError(f"it is {kind}, not an image file")
        os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(descriptor)
