"""Back up, restore and verify any :class:`~harness.kv.base.KvStore` through dated sets.

A key-value backup is an object set of kind ``kv`` (:mod:`harness.objects.manifest`): one
object, ``export.jsonl`` (the JSON Lines export of :mod:`harness.kv.base`), under
``backups/kv/<set_id>/`` with its size and SHA-256 in the manifest, written last. Fetching a
set checks that hash and the export's own trailer before anything is written to a store.

A restore writes every entry whose expiry has not passed (those whose time has passed are
counted, not written: they would have expired in the original store too) and can delete the
keys the export does not hold (``prune``). Verification reads every key back and compares
value, type and expiry (within a tolerance, as the clock moves between the two reads).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import KvExportError, RestoreError
from harness.kv.base import (
    ExportReader,
    ExportSummary,
    KvEntry,
    KvStore,
    check_export,
    write_export,
)
from harness.objects.manifest import (
    ObjectManifest,
    read_object_manifest,
    require_kind,
)
from harness.objects.restore import BucketComparison
from harness.objects.single import choose_set_id, publish_file_set
from harness.storage.base import ObjectStore
from harness.storage.digest import sha256_file

EXPORT = "export.jsonl"
TTL_TOLERANCE_MS = 5_000


@dataclass(frozen=True)
class KvBackupResult:
    """One key-value backup set."""

    manifest: ObjectManifest
    manifest_key: str
    summary: ExportSummary
    seconds: float


@dataclass(frozen=True)
class KvRestoreResult:
    """What a restore wrote."""

    written: int
    expired: int
    pruned: int
    seconds: float


def export_store(store: KvStore, path: Path, *, now: datetime | None = None) -> ExportSummary:
    """Export every key of ``store`` to ``path`` (written to a temp name, then renamed).

    Keys that vanish between the listing and their read (expired, deleted) are left out.

    Raises:
        StorageError: the store failed.

    """
    created = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".export-")
    try:
        with os.fdopen(fd, "wb") as out:
            listed = store.keys()
            entries = (e for k in listed if (e := store.read(k)) is not None)
            summary = write_export(entries, out, source=store.location, created_at=created)
        Path(name).replace(path)
    finally:
        Path(name).unlink(missing_ok=True)
    return summary


def backup_kv(
    store: KvStore,
    backup: ObjectStore,
    *,
    workdir: Path,
    kind: str = "kv",
    set_id: str | None = None,
    now: datetime | None = None,
    signing_key: bytes | None = None,
    lock_until: datetime | None = None,
) -> KvBackupResult:
    """Export ``store`` and publish it as set ``backups/<kind>/<set_id>/``.

    Args:
        store: the key-value store.
        backup: the backup store (a bucket or a directory).
        workdir: where the export is written before upload.
        kind: the set kind.
        set_id: default: today (UTC), with the time if taken.
        now: the backup's time.
        signing_key: sign the manifest.
        lock_until: keep export and manifest under COMPLIANCE Object Lock until then.

    Raises:
        ConfigError: a bad kind or a set id already taken.
        StorageError: the store or the backup failed (no manifest is written).

    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    require_kind(kind)
    set_id = choose_set_id(backup, kind, set_id, now)
    path = workdir / EXPORT
    summary = export_store(store, path, now=now)
    manifest, key = publish_file_set(
        backup,
        path,
        kind=kind,
        set_id=set_id,
        key=EXPORT,
        now=now,
        source=store.location,
        content_type="application/jsonl",
        extra={"entries": summary.entries, "export_sha256": summary.sha256},
        signing_key=signing_key,
        lock_until=lock_until,
    )
    return KvBackupResult(manifest, key, summary, time.monotonic() - started)


def fetch_export(
    backup: ObjectStore,
    set_id: str,
    workdir: Path,
    *,
    kind: str = "kv",
    signing_key: bytes | None = None,
) -> tuple[Path, ExportSummary]:
    """Download a set's export and prove it whole: manifest hash, then the export's trailer.

    Raises:
        ObjectNotFound: no such set, or its export is gone.
        ManifestError: the manifest is unreadable, or the export's size or SHA-256 differs
            from it.
        KvExportError: the export itself is malformed or truncated.

    """
    manifest = read_object_manifest(backup, kind, set_id, signing_key=signing_key).manifest
    entry = manifest.by_key().get(EXPORT)
    if entry is None:
        raise KvExportError(f"set {kind}/{set_id} holds no {EXPORT}")
    path = workdir / EXPORT
    backup.get_file(manifest.stored_key(entry), path)
    size, sha = path.stat().st_size, sha256_file(path)
    if (size, sha) != (entry.size, entry.sha256):
        raise KvExportError(
            f"{manifest.stored_key(entry)} was changed after the backup ({size} bytes, SHA-256 "
            f"{sha[:12]}... instead of {entry.size} bytes, {entry.sha256[:12]}...)"
        )
    with path.open("rb") as f:
        return path, check_export(f)


def restore_kv(
    export: Path, store: KvStore, *, prune: bool = False, now_ms: int | None = None
) -> KvRestoreResult:
    """Write every unexpired entry of ``export`` into ``store``.

    The export is read whole once before anything is written: a damaged export, or an
    entry of a type the store cannot hold, leaves the store untouched.

    Args:
        export: a JSON Lines export.
        store: where to write.
        prune: delete keys of the store that the export does not hold.
        now_ms: the time (Unix ms) against which expiries are judged (default: now).

    Raises:
        KvExportError: the export is malformed or truncated (nothing was written).
        RestoreError: phase ``check``: an entry's type is not one the store holds; phase
            ``write``: the store failed part-way.

    """
    started = time.monotonic()
    with export.open("rb") as f:
        summary = check_export(f)
    with export.open("rb") as f:
        odd = {e.type for e in ExportReader(f)} - set(store.value_types)
    if odd:
        raise RestoreError(
            f"{store.location} cannot hold {', '.join(sorted(odd))} values, which the export "
            "has; nothing was written",
            phase="check",
        )
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    written = expired = 0
    names: set[bytes] = set()
    try:
        with export.open("rb") as f:
            for entry in ExportReader(f):
                names.add(entry.key)
                if entry.expires_at_ms is not None and entry.expires_at_ms <= now_ms:
                    expired += 1
                    continue
                store.write(entry)
                written += 1
        pruned = 0
        if prune:
            for key in list(store.keys()):
                if key not in names:
                    store.delete(key)
                    pruned += 1
    except Exception as exc:
        raise RestoreError(
            f"restoring {summary.entries} entries into {store.location} failed after "
            f"{written}: {exc}",
            phase="write",
        ) from exc
    return KvRestoreResult(written, expired, pruned, time.monotonic() - started)


def verify_kv(
    export: Path,
    store: KvStore,
    *,
    now_ms: int | None = None,
    ttl_tolerance_ms: int = TTL_TOLERANCE_MS,
    extra_is_critical: bool = False,
) -> BucketComparison:
    """Compare ``store`` with ``export``: every unexpired key's type, value and expiry.

    Raises:
        KvExportError: the export is malformed or truncated.
        StorageError: the store failed.

    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    missing: list[str] = []
    changed: list[tuple[str, str]] = []
    names: set[bytes] = set()
    matched = 0
    with export.open("rb") as f:
        for entry in ExportReader(f):
            names.add(entry.key)
            # Keys about to expire may go while we compare: leave them out.
            if entry.expires_at_ms is not None and entry.expires_at_ms <= now_ms + ttl_tolerance_ms:
                continue
            found = store.read(entry.key)
            problem = _difference(entry, found, ttl_tolerance_ms)
            if problem == "missing":
                missing.append(_shown(entry.key))
            elif problem:
                changed.append((_shown(entry.key), problem))
            else:
                matched += 1
    present = store.keys()
    extra = tuple(sorted(_shown(k) for k in present if k not in names))
    return BucketComparison(
        f"key-value store {store.location}",
        matched,
        tuple(sorted(missing)),
        extra,
        tuple(sorted(changed)),
        extra_is_critical=extra_is_critical,
        noun="key",
    )


def _difference(want: KvEntry, got: KvEntry | None, tolerance: int) -> str | None:
    if got is None:
        return "missing"
    if got.type != want.type:
        return f"a {got.type} instead of a {want.type}"
    if not want.same_content(got):
        return "value differs"
    if (want.expires_at_ms is None) != (got.expires_at_ms is None):
        return "expiry lost" if got.expires_at_ms is None else "expiry added"
    apart = abs((want.expires_at_ms or 0) - (got.expires_at_ms or 0))
    return f"expires {apart} ms apart" if apart > tolerance else None


def _shown(key: bytes) -> str:
    return key.decode("utf-8", "backslashreplace")
