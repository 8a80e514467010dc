"""R2 object backups in the S3 object-backup format: back up, restore, verify by SHA-256.

A backup lists the bucket, downloads every object once (hashing it locally: an ETag is not a
content hash one can trust), stores it as ``backups/<kind>/<set_id>/<key>`` in the backup
store and publishes the manifest (:mod:`harness.objects.manifest`) last, with each object's
size, SHA-256, ETag, content type and custom metadata. A restore proves every stored object
against the manifest before it uploads it, and a verification downloads the whole bucket
again and compares every hash: "restored" means the bytes are back, not that a command ran.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.cloudflare import sets
from harness.cloudflare.r2 import R2Bucket
from harness.errors import BackupError
from harness.objects.manifest import ObjectEntry, ObjectManifest
from harness.storage.base import ObjectStore, contained_path, key_problem, shown
from harness.storage.digest import sha256_file
from harness.verify.checks import CheckResult, first_few

DEFAULT_KIND = "images"


@dataclass(frozen=True)
class R2Backup:
    """One published R2 backup set."""

    manifest: ObjectManifest
    manifest_key: str
    seconds: float

    def describe(self) -> str:
        """One line: set, objects, bytes, time."""
        m = self.manifest
        return (
            f"set {m.kind}/{m.set_id}: {len(m.entries)} objects, {m.total_size} bytes "
            f"in {self.seconds:.1f} s"
        )


def back_up(
    bucket: R2Bucket,
    store: ObjectStore,
    *,
    workdir: Path,
    kind: str = DEFAULT_KIND,
    set_id: str | None = None,
    now: datetime | None = None,
) -> R2Backup:
    """Copy every object of ``bucket`` into a new set of ``store``; publish the manifest last.

    Raises:
        BackupError: a key that cannot be stored safely (nothing is published).
        StorageError: a transfer failed (nothing is published).

    """
    started = time.monotonic()
    set_id = set_id or sets.common_set_id(store, [kind], now)
    entries: list[ObjectEntry] = []
    for listed in bucket.list_objects():
        problem = key_problem(listed.key)
        if problem:
            raise BackupError(
                f"the object {shown(listed.key)} of {bucket.location} {problem}: it cannot be "
                "stored in a backup set; rename it",
                phase="list",
            )
        local = contained_path(workdir / "r2-backup" / kind / set_id, listed.key)
        got = bucket.download(listed.key, local)
        entry = sets.put_artifact(store, kind, set_id, listed.key, local)
        entries.append(
            ObjectEntry(
                key=listed.key,
                size=entry.size,
                sha256=entry.sha256,
                stored_in=set_id,
                etag=got.etag or listed.etag or None,
                content_type=got.content_type,
                metadata=dict(got.metadata),
            )
        )
        local.unlink()
    manifest = ObjectManifest(
        kind=kind,
        set_id=set_id,
        created_at=sets.now_iso(),
        source=bucket.location,
        entries=tuple(entries),
    )
    key = sets.publish(store, manifest)
    return R2Backup(manifest, key, time.monotonic() - started)


@dataclass(frozen=True)
class R2Restore:
    """What a restore uploaded and what the verification found."""

    set_id: str
    uploaded: int
    unchanged: int
    checks: tuple[CheckResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """True when every critical check passed."""
        return all(c.ok or not c.critical for c in self.checks)


def restore(
    bucket: R2Bucket,
    store: ObjectStore,
    set_id: str,
    *,
    workdir: Path,
    kind: str = DEFAULT_KIND,
) -> R2Restore:
    """Put every object of set ``set_id`` back into ``bucket``, then verify the whole bucket.

    Objects still in the bucket with the backed-up size and ETag are not uploaded again;
    the verification hashes them like the others.

    Raises:
        ObjectNotFound: no such set.
        ManifestError: the manifest is malformed, altered or wrongly signed.
        RestoreError: phase ``verify-artifact``: a stored object is not what was backed up
            (nothing of it reaches the bucket).
        StorageError: a transfer failed.

    """
    started = time.monotonic()
    manifest = sets.read_manifest(store, kind, set_id).manifest
    present = {o.key: o for o in bucket.list_objects()}
    uploaded = unchanged = 0
    for entry in manifest.entries:
        there = present.get(entry.key)
        if there is not None and there.size == entry.size and entry.etag == there.etag:
            unchanged += 1
            continue
        local = sets.fetch_verified(store, manifest, entry, workdir / "r2-restore")
        bucket.upload(
            entry.key, local, content_type=entry.content_type, metadata=dict(entry.metadata)
        )
        local.unlink()
        uploaded += 1
    checks = verify(bucket, manifest, workdir=workdir)
    return R2Restore(set_id, uploaded, unchanged, tuple(checks), time.monotonic() - started)


def verify(bucket: R2Bucket, manifest: ObjectManifest, *, workdir: Path) -> list[CheckResult]:
    """Download every object the manifest lists and compare SHA-256, content type, metadata.

    Args:
        bucket: the bucket to check.
        manifest: what it should hold.
        workdir: scratch space (each object is removed once hashed).

    """
    present = {o.key for o in bucket.list_objects()}
    missing, differ, described = [], [], []
    for entry in manifest.entries:
        if entry.key not in present:
            missing.append(entry.key)
            continue
        local = contained_path(workdir / "r2-verify", entry.key)
        got = bucket.download(entry.key, local)
        if got.size != entry.size or sha256_file(local) != entry.sha256:
            differ.append(entry.key)
        elif (got.content_type, got.metadata) != (entry.content_type, dict(entry.metadata)):
            described.append(entry.key)
        local.unlink()
    wanted = {e.key for e in manifest.entries}
    extra = sorted(present - wanted)
    total = len(manifest.entries)
    return [
        CheckResult(
            "r2 objects",
            ok=not missing,
            critical=True,
            detail=f"{total - len(missing)} of {total} present"
            + (f"; missing {first_few(missing)}" if missing else ""),
        ),
        CheckResult(
            "r2 sha256",
            ok=not differ,
            critical=True,
            detail=f"every object's SHA-256 equals the manifest's ({manifest.total_size} bytes)"
            if not differ
            else f"{len(differ)} objects differ from the backup: {first_few(differ)}",
        ),
        CheckResult(
            "r2 metadata",
            ok=not described,
            critical=True,
            detail="content types and custom metadata as backed up"
            if not described
            else f"{len(described)} objects lost their content type or metadata: "
            f"{first_few(described)}",
        ),
        CheckResult(
            "r2 objects not in the backup",
            ok=not extra,
            critical=False,
            detail="none" if not extra else f"{len(extra)} (uploaded since): {first_few(extra)}",
        ),
    ]
