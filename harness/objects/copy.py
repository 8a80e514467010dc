"""Copying objects between buckets: streamed, hashed on the way, in parallel, bounded.

Every copy reads the source once and hashes the bytes it reads (SHA-256), so the manifest
records what was actually copied, never what the source claimed. Two ways to write:

- **server-side** (source and destination on one endpoint): the bytes are hashed from a
  GET, then the store copies them itself (``CopyObject``, multipart for big objects through
  boto3's managed copy) on the condition that the source still has the ETag that was hashed
  (``CopySourceIfMatch``): an object rewritten in between is detected, not mis-recorded.
- **streamed** (anything else): the GET's body is read in chunks through a hashing reader
  straight into a managed upload; an object is never held in memory whole.

Memory stays bounded: ``workers`` objects are in flight at once, and objects above the
multipart threshold also take one of ``large_slots`` slots, each buffering at most
``TransferConfig.max_concurrency`` chunks of ``multipart_chunksize`` bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from harness.errors import StorageError
from harness.objects.bucket import Bucket, etag_of
from harness.storage.s3 import translate

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectLockRetentionTypeDef

T = TypeVar("T")
R = TypeVar("R")

CHUNK = 1 << 20
# 8 MiB parts, two in flight per large object: ~16 MiB per large slot.
DEFAULT_TRANSFER = TransferConfig(
    multipart_threshold=16 << 20,
    multipart_chunksize=8 << 20,
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
    """How to copy: parallelism, memory bounds, server-side copy, lock."""

    workers: int = 16
    large_slots: int = 2
    server_side: bool = True
    lock: Lock | None = None
    transfer: TransferConfig = field(default=DEFAULT_TRANSFER, compare=False)


@dataclass(frozen=True)
class CopiedObject:
    """What was read and written for one object."""

    size: int
    sha256: str
    etag: str
    content_type: str | None
    metadata: dict[str, str]


class HashingReader:
    """A read-only file object over a stream that hashes and counts every byte read."""

    def __init__(self, body: IO[bytes]) -> None:
        """Wrap ``body`` (a botocore StreamingBody or any binary stream)."""
        self._body = body
        self._sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all when negative), hashing them."""
        data = self._body.read() if n is None or n < 0 else self._body.read(n)
        self._sha.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        """SHA-256 of everything read so far."""
        return self._sha.hexdigest()


def hash_stream(body: IO[bytes]) -> tuple[str, int]:
    """SHA-256 and size of a stream, read in 1 MiB chunks (never whole)."""
    reader = HashingReader(body)
    while reader.read(CHUNK):
        pass
    return reader.hexdigest(), reader.size


class Copier:
    """Copies objects from one bucket to another (see the module docstring)."""

    def __init__(self, source: Bucket, dest: Bucket, options: CopyOptions) -> None:
        """Prepare copies from ``source`` to ``dest``."""
        self.source = source
        self.dest = dest
        self.options = options
        self.server_side = options.server_side and source.shares_endpoint(dest)
        self._large = threading.BoundedSemaphore(max(1, options.large_slots))

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
            size_hint: the listed size (large objects take a large slot).
            content_type: write this content type instead of the source's.
            metadata: write this user metadata instead of the source's.

        Raises:
            ObjectNotFound: the source object is gone.
            StorageError: a request failed, or the object changed while being copied.

        """
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

    def _streamed(
        self, key: str, dest_key: str, content_type: str | None, metadata: dict[str, str] | None
    ) -> CopiedObject:
        response = self.source.get(key)
        kept_type = content_type if content_type is not None else response.get("ContentType")
        kept_meta = dict(metadata if metadata is not None else response.get("Metadata", {}))
        expected = int(response.get("ContentLength", 0))
        target = self.dest.full_key(dest_key)
        args: dict[str, Any] = {"Bucket": self.dest.name, "Key": target, "Metadata": kept_meta}
        if kept_type:
            args["ContentType"] = kept_type
        try:
            if expected < self.options.transfer.multipart_threshold:
                # Small: one read, one PUT (a managed transfer costs more than the object).
                data = response["Body"].read()
                sha, size = hashlib.sha256(data).hexdigest(), len(data)
                if self.options.lock is not None:
                    # S3 requires an integrity checksum on a write that sets a retention.
                    args |= {
                        "ObjectLockMode": self.options.lock.mode,
                        "ObjectLockRetainUntilDate": self.options.lock.until,
                        "ChecksumAlgorithm": "SHA256",
                    }
                self.dest.client.put_object(Body=data, **args)
            else:
                sha, size = self._multipart(HashingReader(response["Body"]), args, expected)
                self._retain(target)
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
        # At most 10,000 parts: parts grow with the object (8 MiB up to 80 GB).
        part_size = max(self.options.transfer.multipart_chunksize, -(-expected // 9_000))
        client = self.dest.client
        upload = client.create_multipart_upload(**args)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            while chunk := _read_exactly(reader, part_size):
                number = len(parts) + 1
                done = client.upload_part(
                    Bucket=args["Bucket"],
                    Key=args["Key"],
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                )
                parts.append({"PartNumber": number, "ETag": done["ETag"]})
                del chunk
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

    def _retain(self, target: str) -> None:
        if self.options.lock is not None:
            # Set apart: some S3-compatible stores ignore lock headers on copies and uploads.
            self.dest.client.put_object_retention(
                Bucket=self.dest.name, Key=target, Retention=self.options.lock.retention()
            )

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
        extra: dict[str, Any] = {"CopySourceIfMatch": f'"{etag}"'}
        if content_type is not None or metadata is not None:
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
            self._retain(target)
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
        return CopiedObject(size, sha, etag, kept_type, kept_meta)


def _read_exactly(reader: HashingReader, size: int) -> bytes:
    """Up to ``size`` bytes (fewer only at the end): a network read may return less."""
    first = reader.read(size)  # urllib3 returns ``size`` bytes unless the stream ends
    if len(first) == size or not first:
        return first
    pieces = [first]
    wanted = size - len(first)
    while wanted > 0 and (piece := reader.read(wanted)):
        pieces.append(piece)
        wanted -= len(piece)
    return b"".join(pieces)


def parallel(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int,
    done: Callable[[R], None] | None = None,
) -> Iterator[R]:
    """Apply ``fn`` to ``items`` on ``workers`` threads, at most ``2 * workers`` in flight.

    Results come in completion order. The first exception stops new submissions, waits for
    the running calls, and is raised.

    Args:
        fn: the work for one item.
        items: consumed lazily (a million keys are never all submitted at once).
        workers: threads.
        done: called (on the caller's thread) with each result, e.g. for progress.

    """
    source = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="copy") as pool:
        running: set[Future[R]] = set()
        exhausted = False
        while True:
            while not exhausted and len(running) < 2 * max(1, workers):
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                running.add(pool.submit(fn, item))
            if not running:
                return
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                error = future.exception()
                if error is not None:
                    for other in running:
                        other.cancel()
                    raise error
                result = future.result()
                if done is not None:
                    done(result)
                yield result
