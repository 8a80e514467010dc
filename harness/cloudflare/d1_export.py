"""A D1 export (the SQL text ``wrangler d1 export`` writes), read without touching the source.

D1 is SQLite: an export is checked by loading it into an SQLite database in memory, never
into D1. :func:`check_export` runs the checks of the backup guide's troubleshooting section
(``sqlite3 :memory: ".read backup.sql"``) and more: the file's SHA-256 against its manifest,
that it loads at all (an export cut mid-statement does not), ``PRAGMA integrity_check``,
``PRAGMA foreign_key_check``, and every table's row count and content hash against the
fingerprint recorded when the backup was taken. An export cut exactly between two statements
still loads: only the manifest's SHA-256 and row counts catch that, so a backup set always
has both.

A :class:`D1Fingerprint` holds the schema (every table, index, view and trigger with its SQL)
and, per table, the row count and an order-independent SHA-256 of its rows (each row's
values typed and serialised canonically, row digests sorted, then hashed). Two databases
with equal fingerprints hold the same schema and the same rows.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import ManifestError
from harness.storage.digest import sha256_file
from harness.verify.checks import CheckResult

# D1's own tables (``_cf_KV``) and SQLite's are not part of an application's data.
_INTERNAL = ("sqlite_", "_cf_")


@dataclass(frozen=True)
class SchemaObject:
    """One table, index, view or trigger, with the SQL that creates it."""

    type: str
    name: str
    table: str
    sql: str


@dataclass(frozen=True)
class TablePrint:
    """Row count and order-independent content hash of one table."""

    name: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class D1Fingerprint:
    """Schema, row counts and content hashes of one database (see the module docstring)."""

    schema: tuple[SchemaObject, ...]
    tables: tuple[TablePrint, ...]

    @property
    def schema_sha256(self) -> str:
        """SHA-256 of the whole schema."""
        text = json.dumps([asdict(o) for o in self.schema], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def total_rows(self) -> int:
        """Rows in every table."""
        return sum(t.rows for t in self.tables)

    def by_name(self) -> dict[str, TablePrint]:
        """The tables by name."""
        return {t.name: t for t in self.tables}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (kept in a backup set's manifest)."""
        return {
            "schema": [asdict(o) for o in self.schema],
            "tables": {t.name: {"rows": t.rows, "sha256": t.sha256} for t in self.tables},
        }

    @classmethod
    def from_json(cls, body: Any) -> D1Fingerprint:
        """Rebuild a fingerprint from :meth:`to_json`'s form, read from a manifest.

        Raises:
            ManifestError: the form is not a fingerprint's.

        """
        try:
            schema = tuple(SchemaObject(**dict(o)) for o in body["schema"])
            tables = tuple(
                TablePrint(str(name), int(t["rows"]), str(t["sha256"]))
                for name, t in dict(body["tables"]).items()
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"the manifest's D1 fingerprint is malformed ({exc})") from exc
        return cls(schema, tuple(sorted(tables, key=lambda t: t.name)))


@dataclass(frozen=True)
class ExportCheck:
    """Every check of one export file; :attr:`ok` when none critical failed."""

    path: Path
    sha256: str
    size: int
    checks: tuple[CheckResult, ...]
    fingerprint: D1Fingerprint | None

    @property
    def ok(self) -> bool:
        """True when every critical check passed."""
        return all(c.ok or not c.critical for c in self.checks)

    def failures(self) -> str:
        """The failed critical checks, ``; `` separated."""
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if c.critical and not c.ok)


class ExportLoadError(Exception):
    """The export's SQL does not run in SQLite (internal: becomes a failed check)."""


@contextmanager
def loaded(path: Path) -> Iterator[sqlite3.Connection]:
    """The export at ``path`` loaded into an SQLite database in memory.

    Raises:
        ExportLoadError: the file is not UTF-8 or its SQL fails (with SQLite's reason).

    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ExportLoadError(f"not UTF-8 text (byte {exc.start})") from exc
    with closing(sqlite3.connect(":memory:")) as conn:
        try:
            conn.executescript(text)
        except sqlite3.Error as exc:
            raise ExportLoadError(f"SQLite refuses it: {exc}") from exc
        yield conn


def fingerprint_connection(conn: sqlite3.Connection) -> D1Fingerprint:
    """The fingerprint of an SQLite database (an export loaded by :func:`loaded`)."""
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "ORDER BY type, name"
    ).fetchall()
    schema = tuple(
        SchemaObject(str(t), str(n), str(tb), " ".join(str(s).split()))
        for t, n, tb, s in rows
        if not str(n).startswith(_INTERNAL)
    )
    tables = tuple(_table_print(conn, o.name) for o in schema if o.type == "table")
    return D1Fingerprint(schema, tuple(sorted(tables, key=lambda t: t.name)))


def fingerprint_export(path: Path) -> D1Fingerprint:
    """The fingerprint of the database an export file describes.

    Raises:
        ManifestError: the export does not load (naming the file and SQLite's reason).

    """
    try:
        with loaded(path) as conn:
            return fingerprint_connection(conn)
    except ExportLoadError as exc:
        raise ManifestError(f"the D1 export {path.name} does not load: {exc}") from exc


def check_export(
    path: Path,
    *,
    expected_sha256: str | None = None,
    expected: D1Fingerprint | None = None,
) -> ExportCheck:
    """Check an export file without restoring it anywhere (every check runs; none stops).

    Args:
        path: the export.
        expected_sha256: the SHA-256 its manifest records.
        expected: the fingerprint its manifest records (row counts, contents, schema).

    """
    digest = sha256_file(path)
    checks: list[CheckResult] = []
    if expected_sha256 is not None:
        same = digest == expected_sha256
        checks.append(
            CheckResult(
                "export sha256",
                ok=same,
                critical=True,
                detail="matches the manifest"
                if same
                else f"{digest[:16]}... but the manifest records {expected_sha256[:16]}...",
            )
        )
    fingerprint: D1Fingerprint | None = None
    try:
        with loaded(path) as conn:
            checks.append(CheckResult("export loads", ok=True, critical=True, detail="in SQLite"))
            integrity = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
            checks.append(
                CheckResult(
                    "integrity_check",
                    integrity == ["ok"],
                    critical=True,
                    detail="; ".join(integrity[:5]),
                )
            )
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            checks.append(
                CheckResult(
                    "foreign keys",
                    ok=not broken,
                    critical=False,
                    detail="every reference resolves"
                    if not broken
                    else f"{len(broken)} rows reference missing rows (first in {broken[0][0]})",
                )
            )
            fingerprint = fingerprint_connection(conn)
    except ExportLoadError as exc:
        checks.append(CheckResult("export loads", ok=False, critical=True, detail=str(exc)))
    if fingerprint is not None:
        has_tables = bool(fingerprint.tables)
        checks.append(
            CheckResult(
                "tables",
                ok=has_tables,
                critical=True,
                detail=f"{len(fingerprint.tables)} tables, {fingerprint.total_rows} rows"
                if has_tables
                else "the export creates no table (an empty or truncated file?)",
            )
        )
        if expected is not None:
            checks += compare_fingerprints(expected, fingerprint)
    return ExportCheck(path, digest, path.stat().st_size, tuple(checks), fingerprint)


def compare_fingerprints(expected: D1Fingerprint, actual: D1Fingerprint) -> list[CheckResult]:
    """One check for the schema and one per table: rows and content against ``expected``.

    Args:
        expected: the reference (taken before the disaster, or recorded by the backup).
        actual: what is there now.

    """
    same_schema = expected.schema_sha256 == actual.schema_sha256
    detail = "identical"
    if not same_schema:
        want = {(o.type, o.name): o.sql for o in expected.schema}
        have = {(o.type, o.name): o.sql for o in actual.schema}
        missing = sorted(f"{t} {n}" for t, n in set(want) - set(have))
        extra = sorted(f"{t} {n}" for t, n in set(have) - set(want))
        changed = sorted(
            f"{t} {n}" for t, n in set(want) & set(have) if want[(t, n)] != have[(t, n)]
        )
        parts = [
            f"{label}: {', '.join(items)}"
            for label, items in (("missing", missing), ("unexpected", extra), ("changed", changed))
            if items
        ]
        detail = "; ".join(parts)
    results = [CheckResult("d1 schema", ok=same_schema, critical=True, detail=detail)]
    have_tables = actual.by_name()
    for table in expected.tables:
        got = have_tables.get(table.name)
        name = f"d1 table {table.name}"
        if got is None:
            results.append(CheckResult(name, ok=False, critical=True, detail="table is missing"))
        elif got.rows != table.rows:
            results.append(
                CheckResult(
                    name,
                    ok=False,
                    critical=True,
                    detail=f"{got.rows} rows, reference had {table.rows}",
                )
            )
        elif got.sha256 != table.sha256:
            results.append(
                CheckResult(
                    name,
                    ok=False,
                    critical=True,
                    detail=f"{got.rows} rows as expected but their content differs",
                )
            )
        else:
            results.append(
                CheckResult(name, ok=True, critical=True, detail=f"{got.rows} rows, content equal")
            )
    for name in sorted(set(have_tables) - {t.name for t in expected.tables}):
        results.append(
            CheckResult(f"d1 table {name}", ok=False, critical=True, detail="not in the reference")
        )
    return results


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_print(conn: sqlite3.Connection, table: str) -> TablePrint:
    digests = []
    # The name comes from sqlite_master and is quoted as an identifier: no value is spliced.
    for row in conn.execute(f"SELECT * FROM {_quoted(table)}"):  # noqa: S608
        digests.append(hashlib.sha256(_canonical_row(row)).digest())
    digests.sort()
    whole = hashlib.sha256()
    for d in digests:
        whole.update(d)
    return TablePrint(table, len(digests), whole.hexdigest())


def _canonical_row(row: tuple[Any, ...]) -> bytes:
    values: list[list[Any]] = []
    for value in row:
        if value is None:
            values.append(["null"])
        elif isinstance(value, bytes):
            values.append(["blob", value.hex()])
        elif isinstance(value, int):
            values.append(["integer", value])
        elif isinstance(value, float):
            values.append(["real", repr(value)])
        else:
            values.append(["text", str(value)])
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
