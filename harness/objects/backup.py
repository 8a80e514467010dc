"""Back up a bucket (or a prefix) into dated sets of a backup bucket, incrementally.

``backup_bucket`` lists the source, copies every object under
``backups/<kind>/<set_id>/<key>`` in the backup bucket (:mod:`harness.objects.copy`:
parallel, hashed, server-side when it can) and writes the manifest
(:mod:`harness.objects.manifest`) last. With a previous set of the same kind, an object
whose size and ETag are unchanged is not copied again: its entry points at the set that
holds its bytes. ``rehash`` reads every such object instead and compares SHA-256 (for stores
whose ETags cannot be trusted, or to catch metadata-only changes). Everything written may be
put under Object Lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from harness.errors import BackupError, ConfigError, ManifestError, SignatureError
from harness.objects.bucket import Bucket, Listed
from harness.objects.copy import Copier, CopyOptions, Lock
from harness.objects.hashing import hash_stream
from harness.objects.manifest import (
    ROOT,
    ObjectEntry,
    ObjectManifest,
    list_set_ids,
    manifest_key,
    new_set_id,
    read_object_manifest,
    require_kind,
    require_set_id,
    stored_key,
)
from harness.objects.parallel import parallel
from harness.redact import get_logger
from harness.storage.base import key_problem, shown
from harness.storage.s3 import translate

log = get_logger(__name__)

Progress = Callable[[int, int, int], None]
"""Called with (objects done, objects in total, bytes copied so far)."""


@dataclass(frozen=True)
class ObjectBackupResult:
    """One completed object backup."""

    manifest: ObjectManifest
    manifest_key: str
    copied: int
    reused: int
    copied_bytes: int
    seconds: float
    previous: str | None
    server_side: bool

    def describe(self) -> str:
        """One line: set, counts, bytes, time."""
        m = self.manifest
        base = f" (unchanged since {self.previous}: {self.reused})" if self.previous else ""
        return (
            f"set {m.kind}/{m.set_id}: {len(m.entries)} objects, {m.total_size} bytes; "
            f"copied {self.copied} ({self.copied_bytes} bytes){base} in {self.seconds:.1f} s"
        )


def lock_for(mode: str | None, days: int, now: datetime) -> Lock | None:
    """The lock to put on a set: ``mode`` for ``days`` from ``now``; None for no lock.

    Raises:
        ConfigError: an unknown mode, or days not positive with a mode.

    """
    if mode is None and not days:
        return None
    if days <= 0:
        raise ConfigError(f"lock days must be positive with a lock mode (got {days})")
    if mode == "GOVERNANCE":
        return Lock("GOVERNANCE", now + timedelta(days=days))
    if mode == "COMPLIANCE":
        return Lock("COMPLIANCE", now + timedelta(days=days))
    raise ConfigError(f"lock mode {mode!r} is not GOVERNANCE or COMPLIANCE")


def backup_bucket(
    source: Bucket,
    backup: Bucket,
    *,
    kind: str = "images",
    set_id: str | None = None,
    now: datetime | None = None,
    incremental: bool = True,
    rehash: bool = False,
    options: CopyOptions | None = None,
    progress: Progress | None = None,
    signing_key: bytes | None = None,
) -> ObjectBackupResult:
    """Copy ``source`` into a new dated set of ``backup``; write its manifest last.

    Args:
        source: the bucket (or prefix) to back up.
        backup: the backup bucket (no prefix: sets live under ``backups/<kind>/``).
        kind: the second key segment (``images``).
        set_id: the set's id; default: today's date (UTC), with the time if taken.
        now: the backup's time (default: now).
        incremental: reuse unchanged objects of the newest earlier set.
        rehash: decide "unchanged" by SHA-256 (reads every object) instead of size and ETag.
        options: parallelism, server-side copy, Object Lock.
        progress: called after each object.
        signing_key: sign the manifest (HMAC-SHA256).

    Raises:
        ConfigError: a bad kind or set id, a set id already taken, a backup bucket with a
            prefix, or a source that overlaps the backups.
        BackupError: a source key that cannot be stored safely, or a copy that failed
            (the set then has no manifest: it is not a backup).
        SignatureError: the previous set's manifest fails its signature.
        StorageError: a bucket cannot be reached.

    """
    options = options or CopyOptions()
    started = time.monotonic()
    now = now or datetime.now(UTC)
    require_kind(kind)
    if backup.prefix:
        raise ConfigError(
            f"the backup location {backup.uri} has a prefix; name the bucket alone (sets go "
            f"under {ROOT}/{kind}/)"
        )
    overlaps = not source.prefix or source.prefix.startswith(f"{ROOT}/")
    if source.name == backup.name and source.shares_endpoint(backup) and overlaps:
        raise ConfigError(
            f"{source.uri} would include its own backups; back up into another bucket"
        )
    source.require_exists()
    backup.require_exists()
    store = backup.store()
    existing = set(list_set_ids(store, kind))
    if set_id is None:
        set_id = new_set_id(now, existing)
    elif require_set_id(set_id) in existing:
        raise ConfigError(f"the set {kind}/{set_id} exists already; choose another id")
    earlier = sorted(s for s in existing if s < set_id)
    previous = _previous(store, kind, earlier[-1], signing_key) if incremental and earlier else None

    listed = source.list()
    bad = [(o.key, p) for o in listed if (p := key_problem(o.key))]
    if bad:
        key, problem = bad[0]
        raise BackupError(
            f"{len(bad)} source key(s) cannot be stored safely, e.g. {shown(key)}: it "
            f"{problem}; rename them or back up a prefix without them",
            phase="list",
        )
    copier = Copier(source, backup, options)
    old = previous.by_key() if previous else {}
    counters = {"done": 0, "bytes": 0, "copied": 0}
    total = len(listed)

    def one(obj: Listed) -> tuple[ObjectEntry, bool]:
        before = old.get(obj.key)
        if before is not None and _unchanged(source, obj, before, rehash=rehash):
            return before, False
        copied = copier.copy(obj.key, stored_key(kind, set_id, obj.key), size_hint=obj.size)
        return ObjectEntry(
            key=obj.key,
            size=copied.size,
            sha256=copied.sha256,
            stored_in=set_id,
            etag=copied.etag or None,
            content_type=copied.content_type or None,
            metadata=copied.metadata,
        ), True

    def tick(result: tuple[ObjectEntry, bool]) -> None:
        # On the caller's thread: the counters need no lock.
        entry, copied = result
        counters["done"] += 1
        counters["copied"] += copied
        counters["bytes"] += entry.size if copied else 0
        if progress is not None:
            progress(counters["done"], total, counters["bytes"])

    try:
        entries = [e for e, _ in parallel(one, listed, workers=options.workers, done=tick)]
    except (ConfigError, BackupError):
        raise
    except Exception as exc:
        raise BackupError(
            f"copying {source.uri} into {backup.uri} failed, the set {kind}/{set_id} has no "
            f"manifest and is not a backup: {exc}",
            phase="copy",
        ) from exc
    finally:
        copier.close()
    lock = options.lock
    manifest = ObjectManifest(
        kind=kind,
        set_id=set_id,
        created_at=now.astimezone(UTC).isoformat(timespec="seconds"),
        source=source.where,
        entries=tuple(sorted(entries, key=lambda e: e.key)),
        lock_mode=lock.mode if lock else None,
        lock_until=lock.until.astimezone(UTC).isoformat(timespec="seconds") if lock else None,
        extra={"previous": previous.set_id} if previous else {},
    )
    key = _publish(backup, manifest, lock, signing_key)
    return ObjectBackupResult(
        manifest=manifest,
        manifest_key=key,
        copied=counters["copied"],
        reused=total - counters["copied"],
        copied_bytes=counters["bytes"],
        seconds=time.monotonic() - started,
        previous=previous.set_id if previous else None,
        server_side=copier.server_side,
    )


def _previous(
    store: Any, kind: str, set_id: str, signing_key: bytes | None
) -> ObjectManifest | None:
    try:
        return read_object_manifest(store, kind, set_id, signing_key=signing_key).manifest
    except SignatureError:
        raise
    except ManifestError as exc:
        # A damaged earlier set must not be built upon: copy everything again.
        log.warning("previous set %s/%s is unreadable (%s); taking a full copy", kind, set_id, exc)
        return None


def _unchanged(source: Bucket, obj: Listed, before: ObjectEntry, *, rehash: bool) -> bool:
    if obj.size != before.size:
        return False
    if not rehash:
        # An object's ETag changes with its content (MD5 of a single-part upload, or of the
        # parts' MD5s): equal size and ETag mean the bytes the previous set holds.
        return bool(obj.etag) and obj.etag == before.etag
    response = source.get(obj.key)
    try:
        sha, size = hash_stream(response["Body"])
    finally:
        response["Body"].close()
    return (sha, size) == (before.sha256, before.size)


def _publish(
    backup: Bucket, manifest: ObjectManifest, lock: Lock | None, signing_key: bytes | None
) -> str:
    key = manifest_key(manifest.kind, manifest.set_id)
    body = manifest.to_json(signing_key=signing_key).encode()
    extra: dict[str, Any] = {"ContentType": "application/json"}
    if lock is not None:
        # S3 requires an integrity checksum on a write that sets a retention.
        extra |= {
            "ObjectLockMode": lock.mode,
            "ObjectLockRetainUntilDate": lock.until,
            "ChecksumAlgorithm": "SHA256",
        }
    try:
        backup.client.put_object(Bucket=backup.name, Key=key, Body=body, **extra)
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, backup.target, f"write the manifest {key}") from exc
    return key


def with_lock(options: CopyOptions, lock: Lock | None) -> CopyOptions:
    """``options`` with ``lock`` put on everything written."""
    return replace(options, lock=lock)
