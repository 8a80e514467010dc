"""Copying objects between buckets: hashed on the way, in parallel, bounded.

Every copy reads the source once and hashes the bytes it reads (SHA-256), so the manifest
records what was actually copied, never what the source claimed. Three ways to write:

- **small objects** (up to :data:`LEAN_LIMIT`, from a plain-HTTP endpoint): one GET reads
  the object whole and one PUT writes the very bytes hashed, through the lean path
  (:mod:`harness.objects.lean`: the same requests without boto3's per-request CPU, and
  boto3 again for anything that does not simply succeed). On one endpoint too: a PUT of
  bytes already in hand costs the store less than a copy, which reads the source again.
- **server-side** (other objects, source and destination on one endpoint): the bytes are
  hashed from a GET, then the store copies them itself (``CopyObject``, multipart for big
  objects through boto3's managed copy) on the condition that the source still has the
  ETag that was hashed (``CopySourceIfMatch``): an object rewritten in between is
  detected, not mis-recorded.
- **streamed** (anything else): the GET's body goes through a hashing reader into a PUT,
  or for big objects into a multipart upload one part at a time.

Memory stays bounded: ``workers`` objects are in flight at once (those under the multipart
threshold read whole), and objects above it also take one of ``large_slots`` slots, each
holding one part of ``multipart_chunksize`` bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from harness.errors import StorageError
from harness.objects.bucket import Bucket, etag_of
from harness.objects.hashing import HashingReader, fill, hash_stream
from harness.objects.lean import Fetched, LeanS3
from harness.storage.s3 import translate

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectLockRetentionTypeDef

# Objects up to this size are read whole on the lean path (workers x this in memory).
LEAN_LIMIT = 1 << 20
# Parts of S3's minimum size (5 MiB): a streamed object holds one part in memory at a time,
# a server-side copy of a big object has two part copies in flight.
DEFAULT_TRANSFER = TransferConfig(
    multipart_threshold=16 << 20,
    multipart_chunksize=5 << 20,
    max_concurrency=2,
    use_threads=True,
    preferred_transfer_client="classic",
)


@dataclass(frozen=True)
class Lock:
    """Object Lock to put on everything written: mode and date."""

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    until: datetime

    def retention(self) -> ObjectLockRetentionTypeDef:
        """The ``Retention`` argument of ``put_object_retention``."""
        return {"Mode": self.mode, "RetainUntilDate": self.until}


@dataclass(frozen=True)
class CopyOptions:
    """How to copy: parallelism, memory bounds, server-side copy, lock, lean path.

    ``lean=False`` sends every request through boto3 (to compare, or to rule the lean
    path out when a store misbehaves).
    """

    workers: int = 16
    large_slots: int = 2
    server_side: bool = True
    lock: Lock | None = None
    lean: bool = True
    transfer: TransferConfig = field(default=DEFAULT_TRANSFER, compare=False)


@dataclass(frozen=True)
class CopiedObject:
    """What was read and written for one object."""

    size: int
    sha256: str
    etag: str
    content_type: str | None
    metadata: dict[str, str]


class Copier:
    """Copies objects from one bucket to another (see the module docstring).

    Call :meth:`close` when done: it closes the lean path's connections.
    """

    def __init__(self, source: Bucket, dest: Bucket, options: CopyOptions) -> None:
        """Prepare copies from ``source`` to ``dest``."""
        self.source = source
        self.dest = dest
        self.options = options
        self.server_side = options.server_side and source.shares_endpoint(dest)
        self._large = threading.BoundedSemaphore(max(1, options.large_slots))
        lean = LeanS3.for_target if options.lean else lambda _: None
        self._lean_source = lean(source.target)
        self._lean_dest = self._lean_source if source.shares_endpoint(dest) else lean(dest.target)

    def close(self) -> None:
        """Close the lean path's connections."""
        for lean in (self._lean_source, self._lean_dest):
            if lean is not None:
                lean.close()

    def copy(
        self,
        key: str,
        dest_key: str,
        *,
        size_hint: int,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> CopiedObject:
        """Copy ``key`` of the source to ``dest_key`` of the destination.

        Args:
            key: the source key (relative to the source prefix).
            dest_key: the destination key (relative to the destination prefix).
            size_hint: the listed size (small objects take the lean path, large ones a
                large slot).
            content_type: write this content type instead of the source's.
            metadata: write this user metadata instead of the source's.

        Raises:
            ObjectNotFound: the source object is gone.
            StorageError: a request failed, or the object changed while being copied.

        """
        if size_hint <= LEAN_LIMIT and self._lean_source is not None:
            fetched = self._lean_source.get(
                self.source.name, self.source.full_key(key), limit=LEAN_LIMIT
            )
            # None: not there, grown, or a failed request; boto3 reads it again and says why.
            if fetched is not None:
                return self._from_memory(fetched, dest_key, content_type, metadata)
        large = size_hint >= self.options.transfer.multipart_threshold
        if large:
            self._large.acquire()
        try:
            if self.server_side:
                return self._server_side(key, dest_key, content_type, metadata)
            return self._streamed(key, dest_key, content_type, metadata)
        finally:
            if large:
                self._large.release()

    def _from_memory(
        self,
        fetched: Fetched,
        dest_key: str,
        content_type: str | None,
        metadata: dict[str, str] | None,
    ) -> CopiedObject:
        """Write a small object the lean path read whole: a PUT of the bytes just hashed.

        Even where a server-side copy could be made: the bytes are in memory already, a PUT
        costs the store less CPU than a copy (it need not read the source again), and what
        is stored is exactly what was hashed, with no condition on the source's ETag.
        """
        digest = hashlib.sha256(fetched.body).digest()
        kept_type = content_type if content_type is not None else fetched.content_type
        kept_meta = dict(metadata if metadata is not None else fetched.metadata)
        target = self.dest.full_key(dest_key)
        lean = self._lean_dest
        # A PUT under Object Lock carries lock and checksum headers: boto3 writes those.
        put = (
            self.options.lock is None
            and lean is not None
            and lean.put(
                self.dest.name,
                target,
                fetched.body,
                sha256=digest,
                content_type=kept_type,
                metadata=kept_meta,
            )
        )
        if not put:
            self._put_small(fetched.body, self._put_args(target, kept_type, kept_meta), dest_key)
        return CopiedObject(len(fetched.body), digest.hex(), fetched.etag, kept_type, kept_meta)

    def _put_args(
        self, target: str, content_type: str | None, metadata: dict[str, str]
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": self.dest.name, "Key": target, "Metadata": metadata}
        if content_type:
            args["ContentType"] = content_type
        return args

    def _put_small(self, data: bytes, args: dict[str, Any], dest_key: str) -> None:
        """One PUT through boto3 (with the lock, if any)."""
        if self.options.lock is not None:
            # S3 requires an integrity checksum on a write that sets a retention.
            args = args | {
                "ObjectLockMode": self.options.lock.mode,
                "ObjectLockRetainUntilDate": self.options.lock.until,
                "ChecksumAlgorithm": "SHA256",
            }
        try:
            self.dest.client.put_object(Body=data, **args)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.dest.target, f"upload {self.dest.uri}/{dest_key}") from exc

    def _streamed(
        self, key: str, dest_key: str, content_type: str | None, metadata: dict[str, str] | None
    ) -> CopiedObject:
        response = self.source.get(key)
        kept_type = content_type if content_type is not None else response.get("ContentType")
        kept_meta = dict(metadata if metadata is not None else response.get("Metadata", {}))
        expected = int(response.get("ContentLength", 0))
        target = self.dest.full_key(dest_key)
        args = self._put_args(target, kept_type, kept_meta)
        try:
            if expected < self.options.transfer.multipart_threshold:
                # Small: one read, one PUT (a managed transfer costs more than the object).
                data = response["Body"].read()
                sha, size = hashlib.sha256(data).hexdigest(), len(data)
                self._put_small(data, args, dest_key)
            else:
                sha, size = self._multipart(HashingReader(response["Body"]), args, expected)
                self._retain(target, dest_key)
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            raise translate(exc, self.dest.target, f"upload {self.dest.uri}/{dest_key}") from exc
        finally:
            response["Body"].close()
        if size != expected:
            raise StorageError(
                f"{self.source.uri}/{key}: read {size} bytes of {expected}: the connection "
                "dropped mid-object"
            )
        return CopiedObject(size, sha, etag_of(response), kept_type, kept_meta)

    def _multipart(
        self, reader: HashingReader, args: dict[str, Any], expected: int
    ) -> tuple[str, int]:
        """Upload in parts, one part in memory at a time; abort the upload on failure."""
        # At most 10,000 parts: parts grow with the object (5 MiB up to 45 GB).
        part_size = max(self.options.transfer.multipart_chunksize, -(-expected // 9_000))
        client = self.dest.client
        upload = client.create_multipart_upload(**args)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        # One buffer for every part, filled in place: a part is in memory once, not also
        # as the pieces it was read in (botocore sends a bytearray as it is).
        buffer = bytearray(part_size)
        try:
            while filled := fill(reader, buffer):
                if filled < part_size:
                    del buffer[filled:]  # the last part: shrink in place
                number = len(parts) + 1
                done = client.upload_part(
                    Bucket=args["Bucket"],
                    Key=args["Key"],
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=buffer,  # type: ignore[arg-type]
                )
                parts.append({"PartNumber": number, "ETag": done["ETag"]})
            client.complete_multipart_upload(
                Bucket=args["Bucket"],
                Key=args["Key"],
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except BaseException:
            with contextlib.suppress(BotoCoreError, ClientError):
                client.abort_multipart_upload(
                    Bucket=args["Bucket"], Key=args["Key"], UploadId=upload_id
                )
            raise
        return reader.hexdigest(), reader.size

    def _retain(self, target: str, dest_key: str) -> None:
        if self.options.lock is None:
            return
        try:
            # Set apart: some S3-compatible stores ignore lock headers on copies and uploads.
            self.dest.client.put_object_retention(
                Bucket=self.dest.name, Key=target, Retention=self.options.lock.retention()
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.dest.target, f"lock {self.dest.uri}/{dest_key}") from exc

    def _server_side(
        self, key: str, dest_key: str, content_type: str | None, metadata: dict[str, str] | None
    ) -> CopiedObject:
        response = self.source.get(key)
        try:
            sha, size = hash_stream(response["Body"])
        finally:
            response["Body"].close()
        etag = etag_of(response)
        kept_type = content_type if content_type is not None else response.get("ContentType")
        kept_meta = dict(metadata if metadata is not None else response.get("Metadata", {}))
        replace = _replacement(content_type, metadata, kept_type, kept_meta)
        self._copy_request(key, dest_key, etag, size, replace)
        self._retain(self.dest.full_key(dest_key), dest_key)
        return CopiedObject(size, sha, etag, kept_type, kept_meta)

    def _copy_request(
        self,
        key: str,
        dest_key: str,
        etag: str,
        size: int,
        replace: tuple[str | None, dict[str, str]] | None,
    ) -> None:
        """Copy on the store, on the condition that the source still has ``etag``.

        Raises:
            StorageError: the source changed since it was hashed, or the copy failed.

        """
        extra: dict[str, Any] = {"CopySourceIfMatch": f'"{etag}"'}
        if replace is not None:
            kept_type, kept_meta = replace
            extra |= {"MetadataDirective": "REPLACE", "Metadata": kept_meta}
            if kept_type:
                extra["ContentType"] = kept_type
        source = {"Bucket": self.source.name, "Key": self.source.full_key(key)}
        target = self.dest.full_key(dest_key)
        try:
            if size < self.options.transfer.multipart_threshold:
                self.dest.client.copy_object(
                    Bucket=self.dest.name,
                    Key=target,
                    CopySource=source,  # type: ignore[arg-type]
                    **extra,
                )
            else:
                self.dest.client.copy(
                    source,  # type: ignore[arg-type]
                    self.dest.name,
                    target,
                    ExtraArgs=extra,
                    Config=self.options.transfer,
                )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412"):
                raise StorageError(
                    f"{self.source.uri}/{key} changed while it was being copied; run the "
                    "backup again"
                ) from exc
            raise translate(exc, self.dest.target, f"copy to {self.dest.uri}/{dest_key}") from exc
        except (BotoCoreError, Boto3Error) as exc:
            raise translate(exc, self.dest.target, f"copy to {self.dest.uri}/{dest_key}") from exc


def _replacement(
    content_type: str | None,
    metadata: dict[str, str] | None,
    kept_type: str | None,
    kept_meta: dict[str, str],
) -> tuple[str | None, dict[str, str]] | None:
    """What a copy writes instead of the source's attributes; None to keep the source's."""
    if content_type is None and metadata is None:
        return None
    return kept_type, kept_meta
