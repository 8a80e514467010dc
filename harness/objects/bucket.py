"""A bucket (or a prefix of one) on an S3-compatible endpoint, as object backups see it.

:class:`~harness.storage.base.ObjectStore` moves backup-set files; object backups also need
what a bucket says *about* each object (ETag, content type, user metadata, Object Lock) and
streams instead of whole objects. A :class:`Bucket` holds one boto3 client (thread-safe,
shared by every worker of a copy) and the bucket name, and :meth:`Bucket.store` gives the
same bucket as an ``ObjectStore`` for the manifest and for retention.
"""

from __future__ import annotations

import builtins
import email.utils
import functools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3.session
import botocore.session
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import parse_timestamp

from harness.config import S3Target
from harness.errors import ConfigError, StorageError
from harness.storage.base import key_problem, shown
from harness.storage.s3 import S3ObjectStore, make_client, translate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class Listed:
    """One object as a listing reports it (key relative to the bucket's prefix)."""

    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class LockState:
    """An object's Object Lock state; ``held`` when anything keeps it from being deleted."""

    mode: str | None
    until: datetime | None
    legal_hold: bool

    def held(self, now: datetime) -> bool:
        """True under a legal hold or a retention date after ``now``."""
        return self.legal_hold or (self.until is not None and self.until > now)

    def describe(self) -> str:
        """``COMPLIANCE until 2026-01-01T00:00:00+00:00, legal hold`` (what holds it)."""
        parts = []
        if self.until is not None:
            parts.append(f"{self.mode or 'retention'} until {self.until.isoformat()}")
        if self.legal_hold:
            parts.append("legal hold")
        return ", ".join(parts) or "not locked"


@dataclass(frozen=True)
class Bucket:
    """A bucket on an endpoint, optionally narrowed to a prefix (``photos/``)."""

    target: S3Target
    name: str
    prefix: str = ""
    client: S3Client = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        """Make a client when none is given; check the prefix."""
        if self.client is None:
            object.__setattr__(self, "client", bucket_client(self.target))
        if self.prefix:
            problem = key_problem(self.prefix.rstrip("/"))
            if problem:
                raise ConfigError(f"the prefix {shown(self.prefix)} {problem}")
            if not self.prefix.endswith("/"):
                object.__setattr__(self, "prefix", self.prefix + "/")

    @classmethod
    def parse(cls, uri: str, target: S3Target, *, client: S3Client | None = None) -> Bucket:
        """``s3://bucket`` or ``s3://bucket/prefix`` at ``target``.

        Raises:
            ConfigError: not an ``s3://`` URI with a bucket name.

        """
        if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
            raise ConfigError(
                f"{shown(uri)} is not a bucket; use s3://bucket or s3://bucket/prefix"
            )
        name, _, prefix = uri[5:].partition("/")
        return cls(target, name, prefix.strip("/"), client)  # type: ignore[arg-type]

    @property
    def uri(self) -> str:
        """``s3://name/prefix`` (printable: no secrets)."""
        return f"s3://{self.name}/{self.prefix}".rstrip("/")

    @property
    def where(self) -> str:
        """The URI and the endpoint, printable."""
        return f"{self.uri} at {self.target.display()}"

    def store(self) -> S3ObjectStore:
        """The whole bucket as an :class:`ObjectStore` (same client)."""
        return S3ObjectStore(self.target, self.name, client=self.client)

    def shares_endpoint(self, other: Bucket) -> bool:
        """True when a server-side copy between the two can work (same endpoint and keys)."""
        a, b = self.target, other.target
        return (a.endpoint_url, a.access_key_id, a.region) == (
            b.endpoint_url,
            b.access_key_id,
            b.region,
        )

    def full_key(self, key: str) -> str:
        """The bucket key of ``key`` (relative to the prefix)."""
        return self.prefix + key

    def list(self, under: str = "") -> builtins.list[Listed]:
        """Every object below the prefix (and ``under``), keys relative to the prefix, sorted.

        Raises:
            StorageError: the listing failed.

        """
        found: builtins.list[Listed] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=self.prefix + under
            )
            for page in pages:
                for o in page.get("Contents", []):
                    rel = o["Key"][len(self.prefix) :]
                    if rel and not rel.endswith("/"):  # "directory" placeholders hold nothing
                        found.append(Listed(rel, int(o.get("Size", 0)), _etag(o.get("ETag"))))
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"list {self.uri}") from exc
        return sorted(found, key=lambda o: o.key)

    def get(self, key: str, **conditions: Any) -> dict[str, Any]:
        """Open ``key`` for streaming: the ``get_object`` response (``Body`` is a stream).

        Raises:
            ObjectNotFound: no such key.
            StorageError: the request failed.

        """
        try:
            return dict(
                self.client.get_object(Bucket=self.name, Key=self.full_key(key), **conditions)
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"get {self.uri}/{key}") from exc

    def lock_state(self, key: str) -> LockState:
        """Object Lock retention and legal hold of ``key`` (from ``head_object``).

        Raises:
            StorageError: the request failed.

        """
        try:
            head = self.client.head_object(Bucket=self.name, Key=self.full_key(key))
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"read the lock of {self.uri}/{key}") from exc
        return LockState(
            mode=head.get("ObjectLockMode"),
            until=head.get("ObjectLockRetainUntilDate"),
            legal_hold=head.get("ObjectLockLegalHoldStatus") == "ON",
        )

    def delete(self, key: str) -> None:
        """Delete ``key`` (relative to the prefix).

        Raises:
            UnsafeTargetError: the endpoint is external and not allow-listed.
            StorageError: the request failed.

        """
        self.store().delete(self.full_key(key))

    def require_exists(self) -> None:
        """Raise unless the bucket exists and answers.

        Raises:
            StorageError: naming the bucket and the endpoint.

        """
        try:
            self.client.head_bucket(Bucket=self.name)
        except (BotoCoreError, ClientError) as exc:
            error = translate(exc, self.target, f"open bucket {self.name}")
            raise StorageError(f"{error}; check the bucket name and that it exists") from exc


MAX_WORKERS = 64

_CLIENT_LOCK = threading.Lock()


@functools.cache
def _session() -> boto3.session.Session:
    """The session every bucket client of this process comes from (it holds no connection)."""
    core = botocore.session.get_session()
    # A listing of a million objects parses a million dates: the standard library's
    # parsers do it over ten times faster than dateutil's generic one.
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_date)
    return boto3.session.Session(botocore_session=core)


def bucket_client(target: S3Target) -> S3Client:
    """A boto3 client for parallel copies, one per bucket, shared by every worker.

    As :func:`harness.storage.s3.make_client`, with connections enough for every worker
    (boto3's default pool holds 10) and more retries (a copy makes many requests). Every
    bucket client of the process comes from one session: a session loads the S3 model
    (about 12 MiB) and a client of the same session reuses it.
    """
    with _CLIENT_LOCK:  # a session is not thread-safe, its clients are
        return make_client(target, attempts=5, session=_session(), pool_connections=MAX_WORKERS + 8)


def parse_date(value: str) -> datetime:
    """A timestamp of an S3 answer (always text): ISO 8601 in bodies, HTTP dates in headers.

    Anything else, and any date without a time zone, is left to botocore's parser.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return parse_timestamp(value)
    return parsed if parsed.tzinfo is not None else parse_timestamp(value)


def _etag(value: object) -> str:
    return str(value or "").strip('"')


def etag_of(response: dict[str, Any]) -> str:
    """The ETag of a ``get_object`` / ``head_object`` response, without quotes."""
    return _etag(response.get("ETag"))
