"""D1 databases through wrangler: run SQL, export, import into a fresh database, back up, restore.

One wrangler call per step, never one per row: an export (``wrangler d1 export``) is the
backup and also the fingerprint's source (:mod:`harness.cloudflare.d1_export` loads it into
SQLite in memory), an import is one ``wrangler d1 execute --file``.

A restore never writes into a database that holds anything: D1 cannot rename a database, so
the backup goes into a fresh one (declared in ``wrangler.toml`` locally, made with
``wrangler d1 create`` on an account), is verified there against the fingerprint its
manifest records, and the application's binding is then pointed at it (the seed's
``wrangler d1 import machipoke-prod`` into the damaged database would stop at the first
table that still exists, half-restored).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.cloudflare import sets
from harness.cloudflare.d1_export import (
    D1Fingerprint,
    ExportCheck,
    check_export,
    compare_fingerprints,
    fingerprint_export,
)
from harness.cloudflare.wrangler import Wrangler
from harness.errors import ConfigError, ManifestError, RestoreError, ToolError
from harness.objects.manifest import ObjectManifest
from harness.storage.base import ObjectStore
from harness.verify.checks import CheckResult

__all__ = [
    "KIND",
    "D1Backup",
    "D1Fingerprint",
    "D1Restore",
    "ExportCheck",
    "back_up",
    "check_backup",
    "check_export",
    "compare_fingerprints",
    "execute",
    "export",
    "fingerprint",
    "import_sql",
    "query",
    "recorded_fingerprint",
    "require_name",
    "restore",
    "user_objects",
]

KIND = "database"
"""The manifest kind of D1 backups (``backups/database/<date>/<db>.sql``)."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def require_name(name: str) -> str:
    """Return ``name`` when it is a D1 database name (or binding) wrangler accepts.

    Raises:
        ConfigError: naming the value.

    """
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a D1 database name; use letters, digits, - and _ (at most 64)"
        )
    return name


def execute(w: Wrangler, database: str, statements: str) -> list[list[dict[str, Any]]]:
    """Run SQL statements (one wrangler call); the rows of each statement's result.

    Args:
        w: the project.
        database: the database's name or binding.
        statements: SQL text, statements separated by ``;``.

    Raises:
        ToolFailed: D1 refused the SQL (SQLite's message is in the error).

    """
    out = w.json(
        ["d1", "execute", require_name(database), w.mode_flag, "--json", "--command", statements],
        what=f"d1 execute {database}",
    )
    if not isinstance(out, list):
        raise ToolError(f"wrangler d1 execute {database} printed {type(out).__name__}, not a list")
    return [list(r.get("results") or []) for r in out if isinstance(r, dict)]


def query(w: Wrangler, database: str, statement: str) -> list[dict[str, Any]]:
    """The rows of one SELECT."""
    results = execute(w, database, statement)
    return results[-1] if results else []


def export(w: Wrangler, database: str, dest: Path) -> Path:
    """Export schema and data to ``dest`` with ``wrangler d1 export`` (one call).

    Raises:
        ToolFailed: the export failed (``dest`` is then removed: it is not a backup).

    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        w.run(["d1", "export", require_name(database), w.mode_flag, "--output", tmp])
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def import_sql(w: Wrangler, database: str, path: Path) -> None:
    """Run an export's SQL into ``database`` (one ``wrangler d1 execute --file`` call).

    Raises:
        ToolFailed: D1 refused a statement.

    """
    # --yes: on an account wrangler asks before an import (the database pauses meanwhile).
    w.run(["d1", "execute", require_name(database), w.mode_flag, "--yes", "--file", path.resolve()])


def user_objects(w: Wrangler, database: str) -> list[str]:
    """Names of the tables, views, indexes and triggers an application made in ``database``."""
    rows = query(
        w,
        database,
        "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name",
    )
    return [str(r["name"]) for r in rows]


def fingerprint(w: Wrangler, database: str, workdir: Path) -> D1Fingerprint:
    """Export ``database`` and fingerprint the export (two steps, one wrangler call).

    Raises:
        ToolFailed: the export failed.
        ManifestError: the export does not load into SQLite.

    """
    path = export(w, database, workdir / f"fingerprint-{database}-{time.monotonic_ns()}.sql")
    try:
        return fingerprint_export(path)
    finally:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class D1Backup:
    """One published backup set of D1 databases."""

    manifest: ObjectManifest
    manifest_key: str
    fingerprints: dict[str, D1Fingerprint]
    seconds: float

    def describe(self) -> str:
        """One line: set, databases, tables, rows."""
        parts = [
            f"{db} ({len(fp.tables)} tables, {fp.total_rows} rows)"
            for db, fp in sorted(self.fingerprints.items())
        ]
        return f"set {KIND}/{self.manifest.set_id}: {', '.join(parts)} in {self.seconds:.1f} s"


def back_up(
    w: Wrangler,
    databases: Sequence[str],
    store: ObjectStore,
    *,
    workdir: Path,
    set_id: str | None = None,
    now: datetime | None = None,
) -> D1Backup:
    """Export each database, fingerprint it, store it; publish the manifest last.

    Args:
        w: the project.
        databases: names (or bindings) to back up.
        store: the backup store.
        workdir: scratch space for the exports.
        set_id: the set's id (default: the date, see :func:`sets.common_set_id`).
        now: the backup's time.

    Raises:
        ToolFailed: an export failed (nothing is published).
        ManifestError: an export does not load (nothing is published).
        StorageError: the store refused a write.

    """
    started = time.monotonic()
    set_id = set_id or sets.common_set_id(store, [KIND], now)
    entries, prints = [], {}
    for database in databases:
        path = export(w, database, workdir / KIND / set_id / f"{require_name(database)}.sql")
        prints[database] = fingerprint_export(path)
        entries.append(sets.put_artifact(store, KIND, set_id, f"{database}.sql", path))
    manifest = ObjectManifest(
        kind=KIND,
        set_id=set_id,
        created_at=sets.now_iso(),
        source=f"D1 in {w.where}",
        entries=tuple(sorted(entries, key=lambda e: e.key)),
        extra={
            "tool": f"wrangler {w.version()}",
            "fingerprints": {db: fp.to_json() for db, fp in prints.items()},
        },
    )
    key = sets.publish(store, manifest)
    return D1Backup(manifest, key, prints, time.monotonic() - started)


def recorded_fingerprint(manifest: ObjectManifest, database: str) -> D1Fingerprint:
    """The fingerprint a D1 set's manifest records for ``database``.

    Raises:
        ManifestError: the manifest records none.

    """
    prints = manifest.extra.get("fingerprints")
    if not isinstance(prints, dict) or database not in prints:
        raise ManifestError(
            f"set {manifest.kind}/{manifest.set_id} records no fingerprint of {database}"
        )
    return D1Fingerprint.from_json(prints[database])


def check_backup(
    store: ObjectStore, set_id: str, *, workdir: Path, databases: Sequence[str] = ()
) -> dict[str, ExportCheck]:
    """Check a set's exports without restoring them: hash, load, integrity, rows, contents.

    Args:
        store: the backup store.
        set_id: which set.
        workdir: scratch space for the downloads.
        databases: only these (default: every database of the set).

    Raises:
        ObjectNotFound: there is no such set.
        ManifestError: its manifest is malformed, altered or wrongly signed.

    """
    manifest = sets.read_manifest(store, KIND, set_id).manifest
    results = {}
    for entry in manifest.entries:
        database = entry.key.removesuffix(".sql")
        if databases and database not in databases:
            continue
        dest = workdir / KIND / set_id / entry.key
        dest.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(manifest.stored_key(entry), dest)
        results[database] = check_export(
            dest,
            expected_sha256=entry.sha256,
            expected=recorded_fingerprint(manifest, database),
        )
    return results


@dataclass(frozen=True)
class D1Restore:
    """One database restored from a set and verified against its recorded fingerprint."""

    database: str
    into: str
    set_id: str
    checks: tuple[CheckResult, ...]
    fingerprint: D1Fingerprint
    seconds: float

    @property
    def ok(self) -> bool:
        """True when every critical check passed."""
        return all(c.ok or not c.critical for c in self.checks)


def restore(
    w: Wrangler,
    store: ObjectStore,
    set_id: str,
    database: str,
    *,
    into: str,
    workdir: Path,
) -> D1Restore:
    """Restore ``database`` from set ``set_id`` into the empty database ``into``, then verify.

    Nothing touches ``into`` before the export passed every check; afterwards ``into`` is
    exported again and compared with the fingerprint the manifest recorded.

    Raises:
        ObjectNotFound: no such set.
        ManifestError: the manifest is malformed, altered or wrongly signed.
        RestoreError: phase ``verify-artifact`` (the export is not what was backed up),
            ``check`` (it fails its checks), ``target`` (``into`` is not empty) or
            ``import`` (D1 refused it).

    """
    started = time.monotonic()
    manifest = sets.read_manifest(store, KIND, set_id).manifest
    entry = manifest.by_key().get(f"{database}.sql")
    if entry is None:
        held = ", ".join(e.key.removesuffix(".sql") for e in manifest.entries) or "nothing"
        raise RestoreError(f"set {KIND}/{set_id} holds {held}, not {database}", phase="select")
    path = sets.fetch_verified(store, manifest, entry, workdir)
    expected = recorded_fingerprint(manifest, database)
    checked = check_export(path, expected_sha256=entry.sha256, expected=expected)
    if not checked.ok:
        raise RestoreError(
            f"the export of {database} in set {set_id} fails its checks: {checked.failures()}",
            phase="check",
        )
    present = user_objects(w, into)
    if present:
        raise RestoreError(
            f"{into} is not empty ({', '.join(present[:5])}...): restore into a fresh "
            "database, verify it, then point the binding at it",
            phase="target",
        )
    try:
        import_sql(w, into, path)
    except ToolError as exc:
        raise RestoreError(f"D1 refused the export of {database}: {exc}", phase="import") from exc
    after = fingerprint(w, into, workdir)
    checks = compare_fingerprints(expected, after)
    return D1Restore(database, into, set_id, tuple(checks), after, time.monotonic() - started)
