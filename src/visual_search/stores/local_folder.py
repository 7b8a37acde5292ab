"""ImageStore over a local folder: keys are paths relative to the folder, with '/' separators.

Only regular files are listed and read (a FIFO, socket or device is reported and skipped, never opened), and
only names that make valid keys (core/keys.py: no control characters, valid UTF-8); what was skipped and why is
in `skipped` after each listing. `read_indexed_file` serves a record's file only while it is still the regular
file inside its catalogue folder that was indexed.

Symlink policy: a link (to a file, or a folder above it) is followed only while its target stays inside the
folder; a link out of it is skipped when listing and refused when reading (core/local_files.read_catalogue_file),
unless the store is made with `follow_links_outside=True` (`--follow-links-outside`,
VISUAL_SEARCH_FOLLOW_LINKS_OUTSIDE). Symlinked sub-folders are never walked into while listing.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from visual_search.core.errors import InvalidRequestError, KeyConflictError, NotFoundError, VisualSearchError
from visual_search.core.hashing import sha256_hex
from visual_search.core.images import IMAGE_SUFFIXES
from visual_search.core.keys import key_problem, printable
from visual_search.core.local_files import catalogue_file_problem, read_catalogue_file
from visual_search.core.ports import ObjectInfo, StoredObject
from visual_search.core.records import ImageRecord


class LocalFolderStore:
    key_prefix = ""  # keys are paths relative to the folder

    def __init__(self, root: str | Path, *, url_prefix: str = "/images/", follow_links_outside: bool = False):
        self.root = Path(root).resolve()
        self.url_prefix = url_prefix
        self.follow_links_outside = follow_links_outside
        self.skipped: list[tuple[str, str]] = []  # (path shown safely, reason) of the last listing

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Image files below the root (recursively, following no symlinked folders), sorted by key. Entries that
        are not regular files, or whose names cannot be keys, are left out and listed in `skipped`."""
        keys = []
        self.skipped = []
        for folder, subfolders, files in os.walk(self.root):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for name in files:
                if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                path = Path(folder, name)
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                problem = key_problem(key) or catalogue_file_problem(
                    path, self.root, follow_links_outside=self.follow_links_outside
                )
                if problem:
                    self.skipped.append((printable(str(path)), problem))
                else:
                    keys.append(key)
        return iter(sorted(keys))

    def read(self, key: str) -> bytes:
        try:
            return read_catalogue_file(self._path(key), self.root, follow_links_outside=self.follow_links_outside)
        except NotFoundError:
            raise NotFoundError(f"no image {printable(key)!r} in {self.root}") from None

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def stat(self, key: str) -> tuple[int, int] | None:
        """(size, mtime_ns) of the key's file; None when it is missing or the key names no place in the folder."""
        try:
            info = self._path(key).stat()
        except (OSError, VisualSearchError):
            return None
        return (info.st_size, info.st_mtime_ns)

    def url_for(self, key: str) -> str:
        return self.url_prefix + quote(key)

    def put(self, key: str, data: bytes, *, metadata: Mapping[str, str] | None = None) -> None:
        """Write through a temporary file renamed into place, so a watcher or reader never sees half a file.
        `metadata` is not kept: a folder has nowhere to put it (the index record holds label and fields).
        A key whose folder is a file (`a.jpg/b.jpg` beside `a.jpg`) or whose name is a folder is KeyConflictError
        (409); a name the file system refuses is InvalidRequestError (400): the caller chose them."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A short temporary name: one derived from the key would pass the 255-byte limit before the key does.
            handle, partial = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".partial")
        except (FileExistsError, NotADirectoryError):
            raise KeyConflictError(
                f"the key {printable(key)!r} needs a folder where a file of the catalogue is"
            ) from None
        except OSError as error:
            raise InvalidRequestError(
                f"the key {printable(key)!r} cannot be a file name here: {error.strerror}"
            ) from None
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            if path.is_dir():
                raise KeyConflictError(f"the key {printable(key)!r} names a folder of the catalogue")
            os.replace(partial, path)
        except OSError as error:
            raise InvalidRequestError(
                f"the key {printable(key)!r} cannot be a file name here: {error.strerror}"
            ) from None
        finally:
            Path(partial).unlink(missing_ok=True)

    def read_object(self, key: str) -> StoredObject:
        """The file's bytes and modification time; a folder keeps no metadata."""
        data = self.read(key)
        try:
            modified = self._path(key).stat().st_mtime
        except OSError:
            modified = None  # removed since the read: the bytes read are still the object's
        return StoredObject(data, modified=modified)

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every regular file below the root whose key starts with `prefix`, any suffix, sorted by key. Hidden
        names are left out, and with them the temporary files of a `put` in progress."""
        found = []
        for folder, subfolders, files in os.walk(self.root):
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]
            for name in files:
                path = Path(folder, name)
                key = path.relative_to(self.root).as_posix()
                if name.startswith(".") or not key.startswith(prefix):
                    continue
                try:
                    info = path.stat()
                except OSError:
                    continue  # removed while listing
                if stat.S_ISREG(info.st_mode) and not catalogue_file_problem(
                    path, self.root, follow_links_outside=self.follow_links_outside
                ):  # the symlink policy of list_keys: no link out of the folder
                    found.append(ObjectInfo(key, info.st_size, info.st_mtime))
        return iter(sorted(found, key=lambda entry: entry.key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(part in ("..", "") for part in parts):
            raise InvalidRequestError(f"invalid image key {key!r}")
        return self.root.joinpath(*parts)


def read_indexed_file(record: ImageRecord, *, follow_links_outside: bool = False) -> bytes:
    """The bytes of a record's local file, only while it is the file that was indexed: a regular file, inside
    its catalogue folder once every symlink is resolved (the folder is the record's uri less its key; unless
    `follow_links_outside`), with the recorded content hash. Anything else (a file swapped for a symlink to
    /etc/passwd, edited, or gone) is a NotFoundError saying what to do. The bytes returned are those checked, so
    nothing can change in between: thumbnails and reports are made from them, never by opening the path again."""
    missing = NotFoundError(f"no image file for the key {printable(record.key)!r}")
    if record.uri.startswith("s3://") or not record.uri.lower().endswith(IMAGE_SUFFIXES):
        raise missing
    path = Path(record.uri)
    depth = len(PurePosixPath(record.key).parts)
    root = path.parents[depth - 1] if 0 < depth <= len(path.parents) else path.parent
    try:
        data = read_catalogue_file(path, root, follow_links_outside=follow_links_outside)
    except (OSError, InvalidRequestError, NotFoundError):
        raise missing from None
    if sha256_hex(data) != record.content_hash:
        raise NotFoundError(
            f"the file of the key {printable(record.key)!r} is no longer the one indexed (changed, moved or replaced by "
            "a link); index its folder again to serve it"
        )
    return data
