"""The object-store interface every backup and restore step speaks to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object."""

    key: str
    size: int


@runtime_checkable
class ObjectStore(Protocol):
    """A flat key space of immutable blobs: an S3 bucket or a local directory."""

    @property
    def location(self) -> str:
        """Where the store lives, printable (no secrets)."""
        ...

    def put_file(self, key: str, path: Path) -> None:
        """Upload ``path`` under ``key``; readers never see a partial object."""
        ...

    def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path``; ``path`` appears only when complete."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """Return the content of ``key``."""
        ...

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (a no-op when absent)."""
        ...
