"""An object store in a local directory, with atomic writes (temp name, then rename)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.errors import ObjectNotFound, StorageError
from harness.storage.base import ObjectInfo


class LocalObjectStore:
    """Keys map to files below ``root``; ``/`` in a key is a directory separator."""

    def __init__(self, root: Path) -> None:
        """Use (and create) ``root``."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        """The directory, printable."""
        return str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()) or key.endswith("/") or not key:
            raise StorageError(f"invalid object key {key!r} for {self.root}")
        return path

    def put_file(self, key: str, path: Path) -> None:
        """Copy ``path`` in under ``key`` atomically."""
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(dest, lambda tmp: shutil.copyfile(path, tmp))

    def get_file(self, key: str, path: Path) -> None:
        """Copy ``key`` out to ``path`` atomically."""
        source = self._existing(key)
        _atomic_write(path, lambda tmp: shutil.copyfile(source, tmp))

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` atomically."""
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(dest, lambda tmp: tmp.write_bytes(data))

    def get_bytes(self, key: str) -> bytes:
        """Read ``key``."""
        return self._existing(key).read_bytes()

    def _existing(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(f"{key!r} not found in {self.root}")
        return path

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object below the root whose key starts with ``prefix``."""
        found = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(ObjectInfo(key=key, size=path.stat().st_size))
        return sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._path(key).unlink(missing_ok=True)


def _atomic_write(dest: Path, write: Callable[[Path], object]) -> None:
    """Let ``write`` fill a temp file beside ``dest``, then rename it into place."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
