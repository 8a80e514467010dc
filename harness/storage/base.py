"""The object-store interface every backup and restore step speaks to.

A store is a flat key space of immutable blobs. Backup sets are published, fetched and
checked through :class:`ObjectStore` alone; which store a set lives in is decided once, by
:func:`harness.sets.location.open_store`.

Plugging in a new store:

- S3-compatible services (AWS S3, Cloudflare R2, MinIO, SeaweedFS) need no new code: they are
  ``s3://bucket/prefix`` locations with their endpoint in :class:`harness.config.S3Target`.
- Anything else gets a module ``harness/storage/<name>.py`` with a class that satisfies
  :class:`ObjectStore` (every method below, same errors), a URI scheme recognised by
  :func:`harness.sets.location.parse_location`, one branch in ``open_store``, and a
  parameter of ``tests/integration/test_store_conformance.py``, which runs the same
  assertions against every store.

Keys are the same everywhere so that a set can move between stores: relative POSIX paths
of UTF-8 text (spaces and any script welcome), without ``.``/``..``/empty segments,
backslashes or control characters (:func:`key_problem`). Stores refuse other keys with
:class:`UnsafeObjectError` before any I/O.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.errors import UnsafeObjectError

MAX_KEY_BYTES = 1024
# Most file systems refuse longer names; a key segment becomes a file name when downloaded.
MAX_SEGMENT_BYTES = 255


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object (one version of it, when listed as of a time)."""

    key: str
    size: int
    version_id: str | None = None


@runtime_checkable
class ObjectStore(Protocol):
    """A flat key space of immutable blobs: an S3 bucket or a local directory.

    Errors: :class:`~harness.errors.ObjectNotFound` for a missing key,
    :class:`~harness.errors.UnsafeObjectError` for a key outside the rules above or a stored
    file that is not a regular file, :class:`~harness.errors.ConfigError` for a feature the
    store lacks (Object Lock, versions), :class:`~harness.errors.StorageError` otherwise.
    """

    @property
    def location(self) -> str:
        """Where the store lives, printable (no secrets)."""
        ...

    def put_file(self, key: str, path: Path, *, lock_until: datetime | None = None) -> None:
        """Upload ``path`` under ``key``; readers never see a partial object.

        ``lock_until`` keeps the object immutable until then (stores without a lock refuse).
        """
        ...

    def get_file(self, key: str, path: Path, *, version_id: str | None = None) -> None:
        """Download ``key`` (or one version of it) to ``path``; it appears only when complete."""
        ...

    def put_bytes(self, key: str, data: bytes, *, lock_until: datetime | None = None) -> None:
        """Store ``data`` under ``key`` (immutable until ``lock_until``, if given)."""
        ...

    def get_bytes(self, key: str, *, version_id: str | None = None) -> bytes:
        """Return the content of ``key`` (or of one version of it)."""
        ...

    def list(self, prefix: str = "", *, as_of: datetime | None = None) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key.

        With ``as_of``: each key's newest version at or before that time, with its
        ``version_id`` (keys deleted by then are absent). Stores without versions refuse.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (a no-op when absent)."""
        ...


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a safe, portable key or artifact path; None when it is.

    A safe key is a relative POSIX path that stays where it is put: joined to any directory
    it names a file below that directory.
    """
    if not key:
        return "is empty"
    if any(unicodedata.category(c) == "Cs" for c in key):
        return "is not valid Unicode text"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes"
    if any(unicodedata.category(c) == "Cc" for c in key):
        return "contains a control character"
    if "\\" in key:
        return "contains a backslash (use / between directories)"
    if key.startswith("/"):
        return "is absolute (it must be relative to the set)"
    for segment in key.split("/"):
        if not segment:
            return "has an empty segment (// or a trailing /)"
        if segment in (".", ".."):
            return f"has a {segment!r} segment"
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            return f"has a segment longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def shown(text: str, *, limit: int = 120) -> str:
    """``text`` safe for one line of output: quoted, escaped and shortened."""
    quoted = repr(text[:limit])
    return quoted + ("..." if len(text) > limit else "")


def require_key(key: str, where: str) -> str:
    """Return ``key`` when safe.

    Raises:
        UnsafeObjectError: naming the key, ``where`` it was meant for, and the problem.

    """
    problem = key_problem(key)
    if problem:
        raise UnsafeObjectError(f"invalid object key {shown(key)} for {where}: it {problem}")
    return key


def contained_path(root: Path, rel: str) -> Path:
    """The path of ``rel`` below ``root``, proven to stay inside ``root``.

    Used for every download of a key to a local file, whatever store the key came from.

    Raises:
        UnsafeObjectError: ``rel`` is not a safe key, or resolves outside ``root`` (a
            symbolic link on the way).

    """
    require_key(rel, str(root))
    path = root.joinpath(*rel.split("/"))
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafeObjectError(f"{shown(rel)} would be written outside {root}")
    return path
