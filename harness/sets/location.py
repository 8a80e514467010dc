"""Where a backup set lives, and the one place that turns a location into an object store.

Everything that publishes, fetches or checks a set speaks to the
:class:`~harness.storage.base.ObjectStore` that :meth:`Location.store` returns: a directory
(:class:`~harness.storage.local.LocalObjectStore`, the set directory as its root) or an S3
bucket (:class:`~harness.storage.s3.S3ObjectStore`, the set under a prefix). A new kind of
store plugs in here: see :mod:`harness.storage.base`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from harness.config import S3Target
from harness.errors import ConfigError
from harness.storage.base import ObjectStore, key_problem, shown


@dataclass(frozen=True)
class Location:
    """Where a set lives: a local directory, or a prefix in an S3 bucket."""

    uri: str
    local: Path | None = None
    bucket: str = ""
    prefix: str = ""
    s3: S3Target | None = None
    # Publishing: keep every object under COMPLIANCE Object Lock for this many days.
    lock_days: int = 0
    # Fetching: read the newest version of each object at or before this time (a versioned
    # bucket keeps the set as it was, whatever was overwritten or deleted since).
    as_of: datetime | None = None

    def store(self) -> ObjectStore:
        """The store that holds the set (the only place that tells the kinds apart).

        Raises:
            ConfigError: an S3 location without an S3 endpoint.

        """
        return open_store(self)

    def key(self, rel: str) -> str:
        """The object key of a path inside the set."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def rel(self, key: str) -> str:
        """The path inside the set of an object key listed under :meth:`key` ``("")``."""
        return key.removeprefix(self.key(""))


def open_store(location: Location) -> ObjectStore:
    """The object store behind ``location``.

    Raises:
        ConfigError: an S3 location without an S3 endpoint.

    """
    # Imported here: a local-only run never loads boto3.
    if location.local is not None:
        from harness.storage.local import LocalObjectStore

        return LocalObjectStore(location.local)
    if location.s3 is None:
        raise ConfigError(f"{location.uri} is an S3 location but no S3 endpoint is configured")
    from harness.storage.s3 import S3ObjectStore

    return S3ObjectStore(location.s3, location.bucket)


def parse_location(
    uri: str,
    *,
    s3: S3Target | None = None,
    lock_days: int = 0,
    as_of: datetime | None = None,
) -> Location:
    """Interpret ``uri``: ``s3://bucket/prefix`` or a local directory path.

    Args:
        uri: where the set is.
        s3: the endpoint and credentials of an ``s3://`` location.
        lock_days: write the set under COMPLIANCE Object Lock for this many days (S3 only).
        as_of: read the set as it was at this time, from object versions (S3 only).

    Raises:
        ConfigError: an S3 URI without a bucket or with an unsafe prefix, or S3-only
            options on a local path.

    """
    if lock_days < 0:
        raise ConfigError(f"lock_days must not be negative (got {lock_days})")
    if uri.startswith("s3://"):
        parts = urlsplit(uri)
        if not parts.netloc:
            raise ConfigError(f"{shown(uri)} names no bucket; use s3://bucket/prefix")
        prefix = parts.path.strip("/")
        problem = key_problem(prefix) if prefix else None
        if problem:
            # Some S3-compatible stores (SeaweedFS's filer) treat keys as file paths.
            raise ConfigError(f"the prefix of {shown(uri)} {problem}; use s3://bucket/a/b")
        return Location(
            uri=uri,
            bucket=parts.netloc,
            prefix=prefix,
            s3=s3,
            lock_days=lock_days,
            as_of=as_of,
        )
    if lock_days or as_of:
        raise ConfigError("Object Lock and reading as of a time need an s3:// location")
    return Location(uri=uri, local=Path(uri).expanduser())
