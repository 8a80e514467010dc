"""Restore an object backup into a bucket, and verify sets and buckets against manifests.

- :func:`verify_set` checks a set without restoring it: every object its manifest names is
  read back from the backup bucket and hashed (missing, wrong size, wrong SHA-256).
- :func:`restore_objects` checks that every object the manifest names is present with its
  size *before* it writes anything, copies them into the target bucket (keys, content types
  and user metadata as recorded), then verifies the target.
- :func:`verify_bucket` compares a bucket with a manifest: every object is read and hashed;
  the result lists what is missing, extra, and changed (content, content type, metadata).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from harness.errors import ObjectNotFound, RestoreError
from harness.objects.bucket import Bucket
from harness.objects.copy import Copier, CopyOptions
from harness.objects.hashing import hash_stream
from harness.objects.manifest import (
    ROOT,
    ObjectEntry,
    ObjectManifest,
    list_set_ids,
    read_object_manifest,
    require_set_id,
    set_id_problem,
)
from harness.objects.parallel import parallel
from harness.storage.base import shown
from harness.verify.checks import CheckResult, first_few

Progress = Callable[[int, int], None]
"""Called with (objects done, objects in total)."""

_SHOWN = 5  # keys named in a one-line detail


@dataclass(frozen=True)
class BucketComparison:
    """A bucket (or a set's stored objects) against a manifest."""

    what: str
    matched: int
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    changed: tuple[tuple[str, str], ...]  # (key, what differs)
    extra_is_critical: bool = False
    noun: str = "object"

    @property
    def ok(self) -> bool:
        """Nothing missing or changed (and nothing extra when that is critical)."""
        return not self.missing and not self.changed and not (self.extra and self.extra_is_critical)

    def checks(self) -> list[CheckResult]:
        """One check each: objects present, objects intact, no unexpected objects."""
        total = self.matched + len(self.changed) + len(self.missing)
        return [
            CheckResult(
                f"{self.what}: every {self.noun} present",
                ok=not self.missing,
                critical=True,
                detail=f"{total - len(self.missing)} of {total} present"
                + _listed("missing", [shown(k, limit=80) for k in self.missing]),
            ),
            CheckResult(
                f"{self.what}: every {self.noun} intact",
                ok=not self.changed,
                critical=True,
                detail=f"{self.matched} match"
                + _listed("changed", [f"{shown(k, limit=80)} ({why})" for k, why in self.changed]),
            ),
            CheckResult(
                f"{self.what}: no unexpected {self.noun}s",
                ok=not self.extra,
                critical=self.extra_is_critical,
                detail=f"{len(self.extra)} extra"
                + _listed("", [shown(k, limit=80) for k in self.extra[:_SHOWN]], len(self.extra)),
            ),
        ]

    def describe(self) -> str:
        """One line: counts of matched, missing, extra, changed."""
        return (
            f"{self.what}: {self.matched} match, {len(self.missing)} missing, "
            f"{len(self.extra)} extra, {len(self.changed)} changed"
        )


@dataclass(frozen=True)
class ObjectRestoreResult:
    """One restore: which set, how many objects, and the verification of the target."""

    manifest: ObjectManifest
    restored: int
    pruned: int
    seconds: float
    comparison: BucketComparison


def choose_set(backup: Bucket, kind: str, when: str | None = None) -> str:
    """The set to restore: an exact id, the newest set of a date ``YYYYMMDD``, or the newest.

    Raises:
        ConfigError: ``when`` is malformed.
        ObjectNotFound: no complete set matches (the message lists the newest ones).

    """
    ids = list_set_ids(backup.store(), kind)
    if when is not None:
        require_set_id(when)
        wanted = [i for i in ids if i == when or (len(when) == 8 and i[:8] == when)]
    else:
        wanted = ids
    if not wanted:
        have = ", ".join(ids[-5:]) or "none"
        raise ObjectNotFound(
            f"no complete {kind} backup{' for ' + when if when else ''} in {backup.uri} "
            f"(newest sets: {have})"
        )
    return wanted[-1]


def set_on_or_before(backup: Bucket, kind: str, day: date) -> str:
    """The newest set of ``kind`` taken on or before ``day`` (one recovery point for all).

    Raises:
        ObjectNotFound: none.

    """
    ids = [i for i in list_set_ids(backup.store(), kind) if i[:8] <= day.strftime("%Y%m%d")]
    if not ids:
        raise ObjectNotFound(f"no {kind} backup on or before {day} in {backup.uri}")
    return ids[-1]


def verify_set(
    backup: Bucket,
    kind: str,
    set_id: str,
    *,
    signing_key: bytes | None = None,
    workers: int = 16,
    progress: Progress | None = None,
) -> BucketComparison:
    """Read back every object a set's manifest names and check its size and SHA-256.

    Objects under the set's own prefix that its manifest does not name are reported as
    extra (not critical: an interrupted earlier attempt leaves such objects).

    Raises:
        ObjectNotFound: no such set.
        ManifestError: its manifest is unreadable or was modified.
        SignatureError: the signature check failed.

    """
    manifest = read_object_manifest(backup.store(), kind, set_id, signing_key=signing_key).manifest
    stored = {o.key: o for o in backup.list(f"{ROOT}/{kind}/")}
    own = f"{ROOT}/{kind}/{set_id}/"
    named = {manifest.stored_key(e) for e in manifest.entries}
    extra = tuple(k for k in stored if k.startswith(own) and k not in named)

    def check(entry: ObjectEntry) -> tuple[str, str | None]:
        listed = stored.get(manifest.stored_key(entry))
        if listed is None:
            return entry.key, "missing"
        return entry.key, _content_problem(backup, manifest.stored_key(entry), entry)

    return _compare(
        f"set {kind}/{set_id}", manifest.entries, check, extra, workers=workers, progress=progress
    )


def verify_bucket(
    target: Bucket,
    manifest: ObjectManifest,
    *,
    workers: int = 16,
    extra_is_critical: bool = False,
    progress: Progress | None = None,
) -> BucketComparison:
    """Compare ``target`` with ``manifest``: every object read back and hashed.

    Raises:
        StorageError: the bucket cannot be listed.

    """
    listed = {o.key: o for o in target.list()}
    names = {e.key for e in manifest.entries}
    extra = tuple(k for k in listed if k not in names)

    def check(entry: ObjectEntry) -> tuple[str, str | None]:
        found = listed.get(entry.key)
        if found is None:
            return entry.key, "missing"
        if found.size != entry.size:
            return entry.key, f"{found.size} bytes instead of {entry.size}"
        return entry.key, _content_problem(target, entry.key, entry, attributes=True)

    return _compare(
        f"bucket {target.uri}",
        manifest.entries,
        check,
        extra,
        workers=workers,
        progress=progress,
        extra_is_critical=extra_is_critical,
    )


def restore_objects(
    backup: Bucket,
    kind: str,
    set_id: str,
    target: Bucket,
    *,
    signing_key: bytes | None = None,
    options: CopyOptions | None = None,
    prune: bool = False,
    progress: Progress | None = None,
) -> ObjectRestoreResult:
    """Restore set ``set_id`` into ``target`` and verify every object there.

    Args:
        backup: the backup bucket.
        kind: what was backed up.
        set_id: the set (see :func:`choose_set`).
        target: the bucket (or prefix) to restore into; objects are overwritten.
        signing_key: require a manifest signed with this key.
        options: parallelism and server-side copy (a lock is not applied to restores).
        prune: delete objects of ``target`` that the set does not hold (then they count as
            a failure of the verification if any remain).
        progress: called after each object copied.

    Raises:
        ConfigError: a malformed set id.
        ObjectNotFound: no such set.
        ManifestError: its manifest is unreadable or was modified.
        SignatureError: the signature check failed.
        RestoreError: phase ``check``: objects of the set are missing or have the wrong
            size in the backup (nothing was written); phase ``copy``: a copy failed.

    """
    if set_id_problem(set_id):
        require_set_id(set_id)
    started = time.monotonic()
    options = options or CopyOptions()
    manifest = read_object_manifest(backup.store(), kind, set_id, signing_key=signing_key).manifest
    target.require_exists()
    stored = {o.key: o for o in backup.list(f"{ROOT}/{kind}/")}
    absent = [
        e.key
        for e in manifest.entries
        if (s := stored.get(manifest.stored_key(e))) is None or s.size != e.size
    ]
    if absent:
        raise RestoreError(
            f"{len(absent)} object(s) of set {kind}/{set_id} are missing or truncated in "
            f"{backup.uri}, e.g. {shown(absent[0])}; nothing was restored: choose another set",
            phase="check",
        )
    copier = Copier(backup, target, replace(options, lock=None))
    done = [0]
    total = len(manifest.entries)

    def one(entry: ObjectEntry) -> None:
        copier.copy(
            manifest.stored_key(entry),
            entry.key,
            size_hint=entry.size,
            content_type=entry.content_type or "",
            metadata=entry.metadata,
        )

    def tick(_: None) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    try:
        for _ in parallel(one, manifest.entries, workers=options.workers, done=tick):
            pass
    except Exception as exc:
        raise RestoreError(
            f"restoring {kind}/{set_id} into {target.uri} failed after {done[0]} of {total} "
            f"objects: {exc}",
            phase="copy",
        ) from exc
    finally:
        copier.close()
    pruned = 0
    if prune:
        names = {e.key for e in manifest.entries}
        for obj in target.list():
            if obj.key not in names:
                target.delete(obj.key)
                pruned += 1
    comparison = verify_bucket(target, manifest, workers=options.workers, extra_is_critical=prune)
    return ObjectRestoreResult(manifest, total, pruned, time.monotonic() - started, comparison)


def _content_problem(
    bucket: Bucket, key: str, entry: ObjectEntry, *, attributes: bool = False
) -> str | None:
    try:
        response = bucket.get(key)
    except ObjectNotFound:
        return "missing"
    try:
        sha, size = hash_stream(response["Body"])
    finally:
        response["Body"].close()
    if size != entry.size:
        return f"{size} bytes instead of {entry.size}"
    if sha != entry.sha256:
        return "SHA-256 differs"
    if attributes:
        if (response.get("ContentType") or None) != entry.content_type and entry.content_type:
            return f"content type {response.get('ContentType')!r} instead of {entry.content_type!r}"
        if dict(response.get("Metadata", {})) != entry.metadata:
            return "user metadata differs"
    return None


def _compare(
    what: str,
    entries: tuple[ObjectEntry, ...],
    check: Callable[[ObjectEntry], tuple[str, str | None]],
    extra: tuple[str, ...],
    *,
    workers: int,
    progress: Progress | None,
    extra_is_critical: bool = False,
) -> BucketComparison:
    missing: list[str] = []
    changed: list[tuple[str, str]] = []
    done = [0]

    def tick(result: tuple[str, str | None]) -> None:
        key, problem = result
        if problem == "missing":
            missing.append(key)
        elif problem is not None:
            changed.append((key, problem))
        done[0] += 1
        if progress is not None:
            progress(done[0], len(entries))

    for _ in parallel(check, entries, workers=workers, done=tick):
        pass
    matched = len(entries) - len(missing) - len(changed)
    return BucketComparison(
        what, matched, tuple(sorted(missing)), extra, tuple(sorted(changed)), extra_is_critical
    )


def _listed(label: str, items: list[str], total: int | None = None) -> str:
    if not items:
        return ""
    return f"; {label + ': ' if label else ''}{first_few(items, total=total, limit=_SHOWN)}"


def today() -> date:
    """Today's date in UTC (set ids are UTC dates)."""
    return datetime.now(UTC).date()
