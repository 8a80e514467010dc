"""Sets of one file (a KV export, a repository archive, a secrets inventory).

Each is published the same way: pick a free set id, upload the file, then write an object
manifest with its one entry (size, SHA-256) last.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.objects.manifest import (
    ObjectEntry,
    ObjectManifest,
    list_set_ids,
    new_set_id,
    require_set_id,
    stored_key,
    write_object_manifest,
)
from harness.storage.base import ObjectStore
from harness.storage.digest import sha256_file


def choose_set_id(backup: ObjectStore, kind: str, set_id: str | None, now: datetime) -> str:
    """``set_id`` if free, else today's (UTC) id, with the time if today's is taken.

    Raises:
        ConfigError: ``set_id`` names a set that exists already.

    """
    existing = set(list_set_ids(backup, kind))
    if set_id is None:
        return new_set_id(now, existing)
    if require_set_id(set_id) in existing:
        raise ConfigError(f"the set {kind}/{set_id} exists already; choose another id")
    return set_id


def publish_file_set(
    backup: ObjectStore,
    path: Path,
    *,
    kind: str,
    set_id: str,
    key: str,
    now: datetime,
    source: str,
    content_type: str,
    extra: dict[str, Any],
    signing_key: bytes | None = None,
    lock_until: datetime | None = None,
) -> tuple[ObjectManifest, str]:
    """Upload ``path`` as ``key`` of set ``kind/set_id``, then its manifest; return both.

    Raises:
        StorageError: the upload failed (no manifest is written).

    """
    backup.put_file(stored_key(kind, set_id, key), path, lock_until=lock_until)
    manifest = ObjectManifest(
        kind=kind,
        set_id=set_id,
        created_at=now.astimezone(UTC).isoformat(timespec="seconds"),
        source=source,
        entries=(
            ObjectEntry(
                key=key,
                size=path.stat().st_size,
                sha256=sha256_file(path),
                stored_in=set_id,
                content_type=content_type,
            ),
        ),
        lock_mode="COMPLIANCE" if lock_until else None,
        lock_until=lock_until.astimezone(UTC).isoformat(timespec="seconds") if lock_until else None,
        extra=extra,
    )
    written = write_object_manifest(
        backup, manifest, signing_key=signing_key, lock_until=lock_until
    )
    return manifest, written
