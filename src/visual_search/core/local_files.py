"""Reading a local file that should be an image, without ever blocking or following the file into a device.

A FIFO, socket or device opened for reading can block for ever (a FIFO with no writer) or stream without end, so
every local read in the product goes through `read_regular_file`: it opens without blocking, checks on the open
descriptor (no race with a rename) that it is a regular file, and only then reads.

A catalogue file (one that lives in a catalogue folder: indexed, thumbnailed, served, put in a report) is read by
`read_catalogue_file`, which adds the folder rule: the file must be inside its folder once every symlink is
resolved (unless the caller allows links outside), and the file that was opened must be that one. The check is
made on the opened descriptor, so swapping the file, or a folder above it, for a link between the check and the
read gives a refusal, never the other file's bytes.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from visual_search.core.errors import InvalidRequestError, NotFoundError

# Larger than any image the pixel limit lets through (64 MP of 16-bit RGBA TIFF is 512 MB), far below memory.
MAX_CATALOGUE_FILE_BYTES = 512 * 1024 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)

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


def catalogue_file_problem(path: str | Path, root: str | Path, *, follow_links_outside: bool = False) -> str | None:
    """Why `path` is not a catalogue file of the folder `root` (not a regular file, or a link whose target is
    outside `root`), without opening it; None when it is. For listings; reads check again on the descriptor."""
    problem = regular_file_problem(path)
    if problem or follow_links_outside:
        return problem
    try:
        inside = Path(path).resolve(strict=True).is_relative_to(Path(root).resolve(strict=True))
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return "it cannot be resolved (a broken link or a link loop)"
    return None if inside else "it is a link to a file outside the catalogue folder (see --follow-links-outside)"


def read_regular_file(path: str | Path, *, max_bytes: int = MAX_CATALOGUE_FILE_BYTES) -> bytes:
    """The bytes of a regular file. NotFoundError when missing; InvalidRequestError (naming what it is) for a
    folder, FIFO, socket or device, or a file over `max_bytes`; OSError for other failures of the file system.
    The messages do not repeat the path: the caller shows it, as it already does for its other reasons."""
    descriptor = _open_without_blocking(path)
    try:
        _check_descriptor(os.fstat(descriptor), max_bytes)
        return _read_all(descriptor, max_bytes)
    finally:
        os.close(descriptor)


def read_catalogue_file(
    path: str | Path,
    root: str | Path,
    *,
    follow_links_outside: bool = False,
    max_bytes: int = MAX_CATALOGUE_FILE_BYTES,
) -> bytes:
    """The bytes of the catalogue file `path` of the folder `root`, only when all of this holds for the file that
    was opened: it is a regular file (opened without blocking: a FIFO, socket or device is refused, never read),
    at most `max_bytes` long, and, unless `follow_links_outside`, inside `root` once every symlink is resolved.

    Without a race: the path is resolved and checked, the resolved path is opened with O_NOFOLLOW, and the opened
    descriptor's (device, inode) must still be what the path resolves to afterwards. A file or folder swapped for
    a link at any instant gives InvalidRequestError (or NotFoundError when gone), never the link target's bytes.
    """
    if follow_links_outside:
        return read_regular_file(path, max_bytes=max_bytes)
    outside = InvalidRequestError("it is a link to a file outside the catalogue folder, or was replaced while read")
    try:
        root_resolved = Path(root).resolve(strict=True)
        resolved = Path(path).resolve(strict=True)
    except FileNotFoundError:
        raise NotFoundError("no such file (or a broken link)") from None
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        raise InvalidRequestError("it cannot be resolved (a link loop or an unreadable folder)") from None
    if not resolved.is_relative_to(root_resolved):
        raise outside
    descriptor = _open_without_blocking(resolved, extra_flags=getattr(os, "O_NOFOLLOW", 0))
    try:
        opened = os.fstat(descriptor)
        _check_descriptor(opened, max_bytes)
        try:
            now = Path(path).resolve(strict=True)
            same = now == resolved and _same_file(os.stat(now), opened)
        except (OSError, RuntimeError):
            same = False
        if not same:
            raise outside
        return _read_all(descriptor, max_bytes)
    finally:
        os.close(descriptor)


def _open_without_blocking(path: str | Path, *, extra_flags: int = 0) -> int:
    try:
        return os.open(path, _OPEN_FLAGS | extra_flags)
    except FileNotFoundError:
        raise NotFoundError("no such file") from None
    except IsADirectoryError:
        raise InvalidRequestError("it is a folder, not an image file") from None
    except OSError as error:
        if extra_flags and error.errno == errno.ELOOP:  # O_NOFOLLOW met a link: swapped since it was resolved
            raise InvalidRequestError("it was replaced by a link while it was read") from None
        raise


def _check_descriptor(info: os.stat_result, max_bytes: int) -> None:
    kind = kind_of(info.st_mode)
    if kind:
        raise InvalidRequestError(f"it is {kind}, not an image file")
    if info.st_size > max_bytes:
        raise InvalidRequestError(f"it is larger than {max_bytes:,} bytes")


def _read_all(descriptor: int, max_bytes: int) -> bytes:
    """Up to `max_bytes` from a regular file's descriptor; a file that grew past it while read is refused."""
    os.set_blocking(descriptor, True)
    with os.fdopen(descriptor, "rb", closefd=False) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidRequestError(f"it is larger than {max_bytes:,} bytes")
    return data


def _same_file(first: os.stat_result, second: os.stat_result) -> bool:
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)
