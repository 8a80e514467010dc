"""Publish a staged set to its location, and fetch a set from it: through the store alone.

Publishing uploads every artifact first and the manifest last (to a local directory, the
staged files become the set's by hard link: no copy of every dump): the manifest is the commit
point, so a reader sees a complete set or none (a location with objects but no manifest is
an incomplete set, never a backup). A failed publish removes what it uploaded, as far as the
store lets it (Object Lock keeps locked versions; they stay hidden behind delete markers).

Fetching reads the manifest first and proves it (:func:`~harness.sets.manifest.load_manifest`)
before it downloads anything, then downloads only the artifacts the manifest names (a local
set's own files are hard-linked instead: no second copy of every dump), each to a path
proven to stay inside a fresh directory, skipping any whose stored size already differs
from the manifest (the check reports it; a hostile set cannot make the harness download an
object of any size it likes). Sets are signed and verified here when ``DRILL_SIGNING_KEY`` is
set, so every caller (backup, check, restore) gets signing without knowing about it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.errors import ConfigError, DrillError, ManifestError, ObjectNotFound
from harness.redact import get_logger
from harness.sets import signing
from harness.sets.location import Location
from harness.sets.manifest import MANIFEST, MAX_MANIFEST_BYTES, Manifest, load_manifest
from harness.storage.base import ObjectStore, contained_path
from harness.storage.local import LocalObjectStore

log = get_logger(__name__)


def publish(staging: Path, manifest: Manifest, location: Location) -> None:
    """Make a staged set visible at ``location``; the manifest is the commit point.

    The manifest is signed when ``DRILL_SIGNING_KEY`` is set, and read back with the same
    rules a check applies before anything is uploaded: the harness never writes a set it
    would refuse to read.

    Raises:
        ConfigError: the location already holds objects (sets are never overwritten), or
            the signing key is unusable.
        ManifestError: the manifest breaks the schema (an artifact path leaving the set ...).
        StorageError: an upload failed (the manifest is then not written).

    """
    key = signing.configured_key()
    data = manifest.to_json(signing_key=key).encode()
    load_manifest(data, signing_key=key)
    store = location.store()
    if store.list(location.key("")):
        raise ConfigError(
            f"{location.uri} already holds objects; backup sets are never overwritten: "
            "choose a new directory or prefix"
        )
    until = datetime.now(UTC) + timedelta(days=location.lock_days) if location.lock_days else None
    written: list[str] = []
    try:
        for artifact in manifest.artifacts:
            object_key = location.key(artifact.path)
            staged = contained_path(staging, artifact.path)
            if isinstance(store, LocalObjectStore):
                # The staged files are ours and discarded after publishing: a set beside
                # its staging directory gets them as hard links, not copies.
                store.adopt_file(object_key, staged)
            else:
                store.put_file(object_key, staged, lock_until=until)
            written.append(object_key)
        store.put_bytes(location.key(MANIFEST), data, lock_until=until)
    except DrillError:
        _remove(store, written)
        raise
    log.info(
        "published %d artifacts and the %s manifest to %s",
        len(manifest.artifacts),
        "signed" if key else "unsigned",
        location.uri,
    )


def _remove(store: ObjectStore, keys: list[str]) -> None:
    left = []
    for key in keys:
        try:
            store.delete(key)
        except DrillError:
            left.append(key)
    if left:
        log.warning(
            "a failed publish left %d objects in %s (no manifest: not a set)",
            len(left),
            store.location,
        )


@dataclass(frozen=True)
class FetchedSet:
    """A set made readable as a local directory, with its proven manifest."""

    root: Path
    manifest: Manifest
    signature: signing.Verdict
    # Stored size of every artifact present at the location (path in the set -> bytes);
    # only those whose size matches the manifest were downloaded.
    sizes: Mapping[str, int]
    # Paths present at the location that the manifest does not name.
    extra: tuple[str, ...]


def fetch(location: Location, workdir: Path) -> FetchedSet:
    """Prove the set's manifest, then download what it names into a new directory.

    Args:
        location: the set.
        workdir: the new directory is made below it (the caller removes it).

    Raises:
        ObjectNotFound: nothing at all at the location (not a backup set).
        ManifestError: objects but no manifest (an incomplete set), or a manifest that is
            unreadable, breaks the schema, or was modified.
        SignatureError: ``DRILL_SIGNING_KEY`` is set and the manifest is unsigned or signed
            with another key.
        UnsafeObjectError: the location holds a symbolic link or special file.

    """
    store = location.store()
    listing = {o.key: o for o in store.list(location.key(""), as_of=location.as_of)}
    manifest_key = location.key(MANIFEST)
    info = listing.get(manifest_key)
    if info is None:
        when = f" as of {location.as_of.isoformat()}" if location.as_of else ""
        if not listing:
            raise ObjectNotFound(
                f"no {MANIFEST} under {location.uri}{when}: not a (complete) backup set"
            )
        raise ManifestError(
            f"no {MANIFEST} under {location.uri}{when}, only {len(listing)} other objects: an "
            "incomplete set (an interrupted backup?), not a backup"
        )
    if info.size > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{MANIFEST} is {info.size} bytes, more than the {MAX_MANIFEST_BYTES} a manifest "
            "may have: not a manifest"
        )
    data = store.get_bytes(manifest_key, version_id=info.version_id)
    loaded = load_manifest(data, signing_key=signing.configured_key())
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="set-", dir=workdir))
    try:
        (root / MANIFEST).write_bytes(data)
        sizes: dict[str, int] = {}
        for artifact in loaded.manifest.artifacts:
            found = listing.get(location.key(artifact.path))
            if found is None:
                continue
            sizes[artifact.path] = found.size
            if found.size == artifact.size:
                dest = contained_path(root, artifact.path)
                # A local set's own files are linked, not copied: the link pins what is
                # hashed to what is restored (see LocalObjectStore.link_out).
                linked = isinstance(store, LocalObjectStore) and store.link_out(found.key, dest)
                if not linked:
                    store.get_file(found.key, dest, version_id=found.version_id)
    except BaseException:
        discard(root)
        raise
    named = {manifest_key} | {location.key(a.path) for a in loaded.manifest.artifacts}
    extra = tuple(sorted(location.rel(k) for k in listing if k not in named))
    return FetchedSet(root, loaded.manifest, loaded.signature, sizes, extra)


def discard(path: Path) -> None:
    """Remove a staging or fetched directory (best effort)."""
    shutil.rmtree(path, ignore_errors=True)
