"""Workers KV backups: the shared JSON Lines export in a dated set, restore, and verification.

A backup reads the whole namespace in bulk (:meth:`WorkersKv.read_all`), writes it as the
key-value export every adapter shares (:mod:`harness.kv.base`: every key, value, absolute
expiry and metadata, with a trailer that catches truncation) and stores it as
``backups/kv/<date>/<namespace>.jsonl`` with its manifest last. A restore proves the file
(manifest SHA-256, then the export's own trailer) before it writes anything, skips entries
whose expiry has passed since the backup, and writes the rest in bulk; a verification reads
the namespace back and compares every key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.cloudflare import sets
from harness.cloudflare.kv import MIN_TTL_MS, WorkersKv
from harness.errors import KvExportError, RestoreError
from harness.kv.base import KvEntry, check_export, read_export, write_export
from harness.objects.manifest import ObjectManifest
from harness.storage.base import ObjectStore
from harness.verify.checks import CheckResult, first_few

KIND = "kv"
"""The manifest kind of Workers KV backups (``backups/kv/<date>/<namespace>.jsonl``)."""


@dataclass(frozen=True)
class KvBackup:
    """One published KV backup set."""

    manifest: ObjectManifest
    manifest_key: str
    entries: tuple[KvEntry, ...]
    wrangler_calls: int
    seconds: float


def back_up(
    kv: WorkersKv,
    store: ObjectStore,
    *,
    workdir: Path,
    set_id: str | None = None,
    now: datetime | None = None,
) -> KvBackup:
    """Export every key of ``kv`` into a new set of ``store``; publish the manifest last.

    Raises:
        ToolFailed: wrangler failed (nothing is published).
        StorageError: the store refused a write.

    """
    started, calls = time.monotonic(), kv.calls
    set_id = set_id or sets.common_set_id(store, [KIND], now)
    entries = kv.read_all()
    path = workdir / KIND / set_id / f"{kv.name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        summary = write_export(entries, out, source=kv.location, created_at=sets.now_iso())
    entry = sets.put_artifact(store, KIND, set_id, f"{kv.name}.jsonl", path)
    manifest = ObjectManifest(
        kind=KIND,
        set_id=set_id,
        created_at=summary.created_at,
        source=kv.location,
        entries=(entry,),
        extra={"namespace": kv.name, "keys": summary.entries, "export_sha256": summary.sha256},
    )
    key = sets.publish(store, manifest)
    return KvBackup(manifest, key, tuple(entries), kv.calls - calls, time.monotonic() - started)


@dataclass(frozen=True)
class KvRestore:
    """What a restore wrote, skipped, and found when it read the namespace back."""

    namespace: str
    set_id: str
    written: int
    expired: int
    checks: tuple[CheckResult, ...]
    wrangler_calls: int
    seconds: float


def load_set(store: ObjectStore, set_id: str, namespace: str, workdir: Path) -> list[KvEntry]:
    """The entries of ``namespace`` in set ``set_id``, proven before they are returned.

    Raises:
        ObjectNotFound: no such set.
        ManifestError: the manifest is malformed, altered or wrongly signed.
        RestoreError: the set does not hold the namespace (phase ``select``), the export
            is not the one backed up (``verify-artifact``) or is malformed (``check``).

    """
    manifest = sets.read_manifest(store, KIND, set_id).manifest
    entry = manifest.by_key().get(f"{namespace}.jsonl")
    if entry is None:
        held = ", ".join(e.key.removesuffix(".jsonl") for e in manifest.entries) or "nothing"
        raise RestoreError(f"set {KIND}/{set_id} holds {held}, not {namespace}", phase="select")
    path = sets.fetch_verified(store, manifest, entry, workdir)
    try:
        with path.open("rb") as f:
            check_export(f)
        with path.open("rb") as f:
            return list(read_export(f))
    except KvExportError as exc:
        raise RestoreError(f"the KV export in set {set_id}: {exc}", phase="check") from exc


def restore(
    kv: WorkersKv,
    store: ObjectStore,
    set_id: str,
    *,
    workdir: Path,
    namespace: str | None = None,
    now_ms: int | None = None,
) -> KvRestore:
    """Write set ``set_id``'s entries of ``namespace`` (default: ``kv``'s) into ``kv``, verify.

    Keys in ``kv`` that the set does not hold are left alone (sessions opened since the
    backup) and reported by a non-critical check.

    Raises:
        ObjectNotFound, ManifestError, RestoreError: see :func:`load_set`.
        ToolFailed: wrangler failed.

    """
    started, calls = time.monotonic(), kv.calls
    entries = load_set(store, set_id, namespace or kv.name, workdir)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    live = [e for e in entries if e.expires_at_ms is None or e.expires_at_ms >= now + MIN_TTL_MS]
    written = kv.write_many(live, now_ms=now)
    checks = compare_entries(live, kv.read_all())
    return KvRestore(
        namespace or kv.name,
        set_id,
        written,
        len(entries) - len(live),
        tuple(checks),
        kv.calls - calls,
        time.monotonic() - started,
    )


def compare_entries(expected: Sequence[KvEntry], actual: Sequence[KvEntry]) -> list[CheckResult]:
    """Checks that every expected key is present with its value, metadata and expiry.

    Args:
        expected: the reference (the backup's entries that have not expired).
        actual: what the namespace holds now.

    """
    have = {e.key: e for e in actual}
    want = {e.key: e for e in expected}
    missing = sorted(k for k in want if k not in have)
    differ = sorted(k for k in want if k in have and not want[k].same_content(have[k]))
    expiry = sorted(
        k
        for k in want
        if k in have and _seconds(want[k].expires_at_ms) != _seconds(have[k].expires_at_ms)
    )
    extra = sorted(k for k in have if k not in want)
    return [
        CheckResult(
            "kv keys",
            ok=not missing,
            critical=True,
            detail=f"{len(want) - len(missing)} of {len(want)} keys present"
            + (f"; missing {_names(missing)}" if missing else ""),
        ),
        CheckResult(
            "kv values",
            ok=not differ,
            critical=True,
            detail="every value and its metadata equal"
            if not differ
            else f"{len(differ)} differ: {_names(differ)}",
        ),
        CheckResult(
            "kv expiry",
            ok=not expiry,
            critical=True,
            detail="every expiration kept"
            if not expiry
            else f"{len(expiry)} expire at another time: {_names(expiry)}",
        ),
        CheckResult(
            "kv keys not in the backup",
            ok=not extra,
            critical=False,
            detail="none" if not extra else f"{len(extra)} (written since): {_names(extra)}",
        ),
    ]


def _seconds(ms: int | None) -> int | None:
    # Workers KV keeps expirations in whole seconds.
    return None if ms is None else -(-ms // 1000)


def _names(keys: Sequence[bytes]) -> str:
    return first_few([k.decode("utf-8", "replace") for k in keys[:5]], total=len(keys))
