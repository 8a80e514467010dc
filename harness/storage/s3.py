"""S3-compatible object storage over real HTTP with boto3.

Clients use path-style addressing (S3-compatible servers rarely do virtual hosts on
127.0.0.1) and compute request checksums only when required: boto3 >= 1.36 sends them by
default and several S3-compatible stores reject them. Listing always paginates; transfers use
one :class:`TransferConfig` with the classic transfer client.
"""

from __future__ import annotations

import builtins
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3.session
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from harness.config import S3Target
from harness.errors import (
    ObjectNotFound,
    StorageAuthError,
    StorageError,
    StorageUnreachable,
    UnsafeTargetError,
)
from harness.redact import redact
from harness.storage.base import ObjectInfo, require_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_UNREACHABLE = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ConnectionClosedError,
    ReadTimeoutError,
)


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an object in a versioned bucket (or a delete marker)."""

    key: str
    version_id: str
    modified: datetime
    size: int
    deleted: bool


def _lock_args(until: datetime | None) -> dict[str, Any]:
    if until is None:
        return {}
    # S3 requires an integrity checksum on every write that sets a retention; clients here
    # send checksums only when required, and upload_file does not know it is.
    return {
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": until,
        "ChecksumAlgorithm": "SHA256",
    }


def make_client(
    target: S3Target,
    *,
    connect_timeout: float = 5,
    attempts: int = 3,
    session: boto3.session.Session | None = None,
    pool_connections: int | None = None,
) -> S3Client:
    """Build a boto3 S3 client for ``target``.

    Args:
        target: endpoint, credentials and region.
        connect_timeout: seconds to wait for a connection.
        attempts: tries per request (boto3's standard retry mode).
        session: the session to make it from (the caller serialises access to it); default:
            a session of its own, so the client may be used from any thread.
        pool_connections: connections kept open (boto3 keeps 10), with TCP keepalive, for
            clients many threads share.

    """
    config = Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=connect_timeout,
        read_timeout=60,
        retries={"max_attempts": attempts, "mode": "standard"},
    )
    if pool_connections is not None:
        config = config.merge(Config(max_pool_connections=pool_connections, tcp_keepalive=True))
    return (session or boto3.session.Session()).client(
        "s3",
        endpoint_url=target.endpoint_url,
        aws_access_key_id=target.access_key_id,
        aws_secret_access_key=target.secret_access_key,
        region_name=target.region,
        config=config,
    )


def translate(exc: Exception, target: S3Target, action: str) -> StorageError:
    """Turn a boto3 error into a :class:`StorageError` that says what to do."""
    where = target.display()
    if isinstance(exc, _UNREACHABLE):
        return StorageUnreachable(
            f"cannot {action}: the S3 endpoint {where} does not answer; check "
            "--drill-s3-endpoint and that the server is running"
        )
    if isinstance(exc, NoCredentialsError):
        return StorageAuthError(
            f"cannot {action}: no S3 credentials; set DRILL_S3_ACCESS_KEY_ID and "
            "DRILL_S3_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = redact(str(exc))
        if code in _AUTH_CODES:
            return StorageAuthError(
                f"cannot {action}: {where} rejected the credentials ({code}); check "
                "DRILL_S3_ACCESS_KEY_ID and DRILL_S3_SECRET_ACCESS_KEY"
            )
        if code in _MISSING_CODES:
            return ObjectNotFound(f"cannot {action}: not found on {where} ({message})")
        return StorageError(f"cannot {action} on {where}: {message}")
    return StorageError(f"cannot {action} on {where}: {redact(str(exc))}")


def check_endpoint(target: S3Target) -> None:
    """Prove that the endpoint answers and accepts the credentials.

    Raises:
        StorageUnreachable: nothing answers at the endpoint.
        StorageAuthError: the credentials are rejected.

    """
    client = make_client(target, connect_timeout=3, attempts=1)
    try:
        client.list_buckets()
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, target, "list buckets") from exc


class S3ObjectStore:
    """One bucket on an S3-compatible endpoint."""

    def __init__(
        self,
        target: S3Target,
        bucket: str,
        *,
        client: S3Client | None = None,
        transfer: TransferConfig | None = None,
    ) -> None:
        """Use ``bucket`` at ``target`` (see :meth:`create_bucket` to make it)."""
        self.target = target
        self.bucket = bucket
        self.client = client or make_client(target)
        self.transfer = transfer or TransferConfig(preferred_transfer_client="classic")

    @property
    def location(self) -> str:
        """``s3://bucket`` at the endpoint, printable."""
        return f"s3://{self.bucket} at {self.target.display()}"

    def create_bucket(self, *, object_lock: bool = False) -> None:
        """Create the bucket (versioned and lockable when ``object_lock``)."""
        options: dict[str, Any] = {"ObjectLockEnabledForBucket": True} if object_lock else {}
        if self.target.region != "us-east-1":
            # Outside us-east-1 S3 refuses a bucket that does not name its region.
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.target.region}
        try:
            self.client.create_bucket(Bucket=self.bucket, **options)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"create bucket {self.bucket}") from exc

    def put_file(self, key: str, path: Path, *, lock_until: datetime | None = None) -> None:
        """Upload ``path``; S3 makes an object visible only once complete.

        Args:
            key: the object key.
            path: the file to upload.
            lock_until: keep this version under COMPLIANCE Object Lock until then (the
                bucket must have Object Lock enabled).

        Raises:
            UnsafeObjectError: the key is not safe (see :func:`key_problem`).
            StorageError: ``path`` cannot be read, or the upload failed.

        """
        require_key(key, self.location)
        extra = _lock_args(lock_until)
        try:
            self.client.upload_file(
                str(path), self.bucket, key, Config=self.transfer, ExtraArgs=extra or None
            )
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            raise translate(exc, self.target, f"upload {key}") from exc
        except OSError as exc:
            raise StorageError(f"cannot upload {key}: cannot read {path} ({exc.strerror})") from exc

    def get_file(self, key: str, path: Path, *, version_id: str | None = None) -> None:
        """Download (one version of) ``key`` to a temp name beside ``path``, then rename."""
        require_key(key, self.location)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        os.close(fd)
        try:
            self.client.download_file(
                self.bucket,
                key,
                name,
                Config=self.transfer,
                ExtraArgs={"VersionId": version_id} if version_id else None,
            )
            Path(name).replace(path)
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            raise translate(exc, self.target, f"download {key}") from exc
        finally:
            Path(name).unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes, *, lock_until: datetime | None = None) -> None:
        """Store ``data`` under ``key`` (COMPLIANCE-locked until ``lock_until``, if given)."""
        require_key(key, self.location)
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **_lock_args(lock_until))
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"put {key}") from exc

    def put_locked(self, key: str, data: bytes, *, mode: str, until: datetime) -> str:
        """Store ``data`` under an Object Lock retention; return the version id."""
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ObjectLockMode="COMPLIANCE" if mode == "COMPLIANCE" else "GOVERNANCE",
                ObjectLockRetainUntilDate=until,
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"put locked {key}") from exc
        return str(response.get("VersionId", ""))

    def get_bytes(self, key: str, *, version_id: str | None = None) -> bytes:
        """Return the content of ``key`` (or of one version of it)."""
        require_key(key, self.location)
        try:
            if version_id:
                response = self.client.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)
            else:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"get {key}") from exc

    def list(
        self, prefix: str = "", *, as_of: datetime | None = None, page_size: int = 1000
    ) -> builtins.list[ObjectInfo]:
        """Every object under ``prefix``, through the paginator (``page_size`` keys a call).

        With ``as_of``: each key's newest version at or before that time (from the bucket's
        versions; keys whose newest entry by then is a delete marker are absent).
        """
        if as_of is not None:
            return self._list_as_of(prefix, as_of)
        found: builtins.list[ObjectInfo] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
            )
            for page in pages:
                found += [
                    ObjectInfo(key=o["Key"], size=int(o.get("Size", 0)))
                    for o in page.get("Contents", [])
                ]
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"list {self.bucket}/{prefix}") from exc
        return sorted(found, key=lambda o: o.key)

    def _list_as_of(self, prefix: str, as_of: datetime) -> builtins.list[ObjectInfo]:
        newest: dict[str, ObjectInfo | None] = {}
        for v in self.versions(prefix):  # oldest first: the last one by then wins
            if v.modified <= as_of:
                newest[v.key] = None if v.deleted else ObjectInfo(v.key, v.size, v.version_id)
        return sorted((o for o in newest.values() if o is not None), key=lambda o: o.key)

    def versions(self, prefix: str = "") -> builtins.list[ObjectVersion]:
        """Every version and delete marker under ``prefix`` (paginated), oldest first."""
        found: builtins.list[ObjectVersion] = []
        try:
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for v in page.get("Versions", []):
                    found.append(
                        ObjectVersion(
                            v["Key"],
                            str(v["VersionId"]),
                            v["LastModified"],
                            int(v.get("Size", 0)),
                            deleted=False,
                        )
                    )
                for m in page.get("DeleteMarkers", []):
                    found.append(
                        ObjectVersion(
                            m["Key"], str(m["VersionId"]), m["LastModified"], 0, deleted=True
                        )
                    )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"list versions in {self.bucket}/{prefix}") from exc
        return sorted(found, key=lambda v: (v.key, v.modified))

    def delete(self, key: str) -> None:
        """Delete ``key`` (creates a delete marker in a versioned bucket)."""
        require_key(key, self.location)
        self._require_destructive(f"delete {key}")
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"delete {key}") from exc

    def delete_version(self, key: str, version_id: str) -> None:
        """Delete one version of ``key`` for good (Object Lock may refuse: StorageError)."""
        self._require_destructive(f"delete version {version_id} of {key}")
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.target, f"delete version {version_id} of {key}") from exc

    def _require_destructive(self, action: str) -> None:
        if not self.target.destructive_ok:
            raise UnsafeTargetError(
                f"refusing to {action} in {self.location}: it is an external endpoint not "
                "named in --drill-allow-destructive"
            )
