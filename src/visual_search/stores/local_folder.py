"""ImageStore over a local folder: keys are paths relative to the folder, with '/' separators."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Iterator, Mapping
from urllib.parse import quote

from visual_search.core.errors import InvalidRequestError, NotFoundError
from visual_search.core.images import IMAGE_SUFFIXES
from visual_search.core.ports import StoredObject


class LocalFolderStore:
    def __init__(self, root: str | Path, *, url_prefix: str = "/images/"):
        self.root = Path(root).resolve()
        self.url_prefix = url_prefix

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Image files below the root (recursively, following no symlinked folders), sorted by key."""
        keys = []
        for folder, subfolders, files in os.walk(self.root):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for name in files:
                if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                key = Path(folder, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(f"no image {key!r} in {self.root}") from None

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def url_for(self, key: str) -> str:
        return self.url_prefix + quote(key)

    def put(self, key: str, data: bytes, *, metadata: Mapping[str, str] | None = None) -> None:
        """Write through a temporary file renamed into place, so a watcher or reader never sees half a file.
        `metadata` is not kept: a folder has nowhere to put it (the index record holds label and fields)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            partial.write_bytes(data)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def read_object(self, key: str) -> StoredObject:
        """The file's bytes; a folder keeps no metadata."""
        return StoredObject(self.read(key))

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
