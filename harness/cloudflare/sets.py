"""Backup sets of the Cloudflare stack, in the object-backup manifest format.

D1 exports (kind ``database``), KV exports (kind ``kv``) and R2 objects (kind ``images``, or
the bucket's own kind) are stored exactly as S3 object backups are
(:mod:`harness.objects.manifest`): ``backups/<kind>/<set_id>/<key>`` with
``backups/<kind>/<set_id>.manifest.json`` written last, in any
:class:`~harness.storage.base.ObjectStore`. Every artifact's SHA-256 is computed locally
while it is written and checked again before a restore uses it.

The set id is the backup's date (``YYYYMMDD``, with ``-HHMMSS`` when the day already has one);
:func:`common_set_id` picks one id free in every kind, so that a disaster-recovery restore can
take every store back to the same date (C7).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import RestoreError
from harness.objects.manifest import (
    LoadedObjectManifest,
    ObjectEntry,
    ObjectManifest,
    list_set_ids,
    new_set_id,
    read_object_manifest,
    stored_key,
    write_object_manifest,
)
from harness.sets import signing
from harness.storage.base import ObjectStore, contained_path
from harness.storage.digest import sha256_file


def common_set_id(store: ObjectStore, kinds: Iterable[str], now: datetime | None = None) -> str:
    """A set id for ``now`` that no set of any of ``kinds`` uses yet.

    Raises:
        ConfigError: a set of the same second exists already.

    """
    taken: set[str] = set()
    for kind in kinds:
        taken.update(list_set_ids(store, kind))
    return new_set_id(now or datetime.now(UTC), frozenset(taken))


def sets_in_common(store: ObjectStore, kinds: Iterable[str]) -> list[str]:
    """The set ids present (complete) in every one of ``kinds``, oldest first."""
    common: set[str] | None = None
    for kind in kinds:
        ids = set(list_set_ids(store, kind))
        common = ids if common is None else common & ids
    return sorted(common or ())


def put_artifact(store: ObjectStore, kind: str, set_id: str, key: str, path: Path) -> ObjectEntry:
    """Store one local file as object ``key`` of set ``set_id``; its entry, hashed locally.

    Raises:
        StorageError: the store refused it.

    """
    digest = sha256_file(path)
    store.put_file(stored_key(kind, set_id, key), path)
    return ObjectEntry(key=key, size=path.stat().st_size, sha256=digest, stored_in=set_id)


def publish(store: ObjectStore, manifest: ObjectManifest) -> str:
    """Write the manifest last (signed when ``DRILL_SIGNING_KEY`` is set); return its key.

    Raises:
        ConfigError: the signing key is too short.
        StorageError: the store refused the write.

    """
    return write_object_manifest(store, manifest, signing_key=signing.configured_key())


def read_manifest(store: ObjectStore, kind: str, set_id: str) -> LoadedObjectManifest:
    """Read and check one set's manifest (its signature too, with ``DRILL_SIGNING_KEY``).

    Raises:
        ObjectNotFound: there is no such complete set.
        ManifestError: the manifest is malformed, altered or wrongly signed.

    """
    return read_object_manifest(store, kind, set_id, signing_key=signing.configured_key())


def fetch_verified(
    store: ObjectStore, manifest: ObjectManifest, entry: ObjectEntry, workdir: Path
) -> Path:
    """Download ``entry``'s bytes below ``workdir`` and prove their size and SHA-256.

    Raises:
        RestoreError: phase ``verify-artifact``: the stored bytes are not the ones backed up.
        StorageError: the download failed.

    """
    dest = contained_path(workdir, f"{manifest.kind}/{manifest.set_id}/{entry.key}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    store.get_file(manifest.stored_key(entry), dest)
    verify_bytes_file(dest, entry, f"{manifest.kind}/{manifest.set_id}")
    return dest


def verify_bytes_file(path: Path, entry: ObjectEntry, where: str) -> None:
    """Raise unless ``path`` holds exactly ``entry``'s bytes.

    Raises:
        RestoreError: phase ``verify-artifact``, naming the key and what differs.

    """
    size = path.stat().st_size
    digest = sha256_file(path)
    if size != entry.size or digest != entry.sha256:
        raise RestoreError(
            f"{entry.key} in set {where} is not what was backed up ({size} bytes, SHA-256 "
            f"{digest[:16]}..., the manifest records {entry.size} bytes, "
            f"{entry.sha256[:16]}...): the backup was damaged or replaced; restore another set",
            phase="verify-artifact",
        )


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def now_iso() -> str:
    """The current time, ISO 8601 UTC (a manifest's ``created_at``)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
