"""Whole fingerprints: taking, storing as JSON, and comparing into check results and a diff."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Self

from psycopg import Connection

from harness.config import PgTarget
from harness.errors import ManifestError
from harness.verify.buckets import Bucketing
from harness.verify.catalog import CatalogFingerprint, read_catalog_fingerprint
from harness.verify.checks import CheckResult
from harness.verify.data import (
    ROW_HASH,
    ROW_HASHES,
    DataFingerprint,
    LargeObjectDigest,
    TableDigest,
    read_data_fingerprint,
)
from harness.verify.session import export_snapshot, fix_settings, in_shared_snapshot, in_snapshot

# 2: privileges by meaning, foreign servers, large objects, materialized view states.
# 3: the data digests say which row hash made them (older documents: version 1).
FORMAT = 3
_READABLE = frozenset({1, 2, FORMAT})  # format 1 documents: data compared, catalog not
_SHOWN = 8  # differences named per check; the diff has them all


@dataclass(frozen=True)
class Fingerprint:
    """Data and catalog fingerprint of one database."""

    server_version: str
    data: DataFingerprint
    catalog: CatalogFingerprint
    format: int = FORMAT  # of the document it was read from

    def to_json(self) -> str:
        """Serialise (stable order); digests per key range stay out (see ``TableDigest``)."""
        body = asdict(self)
        for table in body["data"]["tables"]:
            del table["buckets"]
        return json.dumps(body, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Parse :meth:`to_json` output.

        Raises:
            ManifestError: not a fingerprint document of a known format.

        """
        try:
            body: dict[str, Any] = json.loads(text)
            if body.get("format") not in _READABLE:
                raise ManifestError(
                    f"fingerprint format {body.get('format')!r} is unknown (this version reads "
                    f"formats {', '.join(map(str, sorted(_READABLE)))}): verify with the "
                    "version of the harness that took the backup"
                )
            large_objects = body["data"].get("large_objects")
            version = int(body["data"].get("row_hash", 1))
            if version not in ROW_HASHES:
                raise ManifestError(
                    f"the fingerprint's row hash version {version} is unknown (this version "
                    f"computes {', '.join(map(str, sorted(ROW_HASHES)))}): verify with the "
                    "version of the harness that took the backup"
                )
            return cls(
                server_version=str(body["server_version"]),
                data=DataFingerprint(
                    tables=tuple(
                        TableDigest(**{**t, "key": tuple(t["key"])}) for t in body["data"]["tables"]
                    ),
                    large_objects=None
                    if large_objects is None
                    else LargeObjectDigest(**large_objects),
                    row_hash=version,
                ),
                catalog=CatalogFingerprint(
                    sections={
                        name: tuple((str(k), str(v)) for k, v in rows)
                        for name, rows in body["catalog"]["sections"].items()
                    }
                ),
                format=int(body["format"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"not a fingerprint document: {exc}") from exc


# Tables with inheritance children: a plain count(*) includes the children's rows.
_PARENTS = """
SELECT DISTINCT n.nspname, c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhparent JOIN pg_namespace n ON n.oid = c.relnamespace
"""


def counted_rows(conn: Connection[Any], fingerprint: Fingerprint) -> dict[tuple[str, str], int]:
    """``(schema, name) -> count(*)`` of the tables whose count ``fingerprint`` already holds.

    A fingerprint counts each table's own rows (``ONLY``): for a table without inheritance
    children that is its ``count(*)``, and a second scan of it is saved. ``conn`` must see
    the same data the fingerprint read (its snapshot, or a database nobody writes to).
    """
    parents = {(str(s), str(n)) for s, n in conn.execute(_PARENTS).fetchall()}
    return {
        (t.schema, t.name): t.rows
        for t in fingerprint.data.tables
        if t.populated and t.rows >= 0 and (t.schema, t.name) not in parents
    }


def take_fingerprint(
    target: PgTarget, *, like: Fingerprint | None = None, buckets: bool = False
) -> Fingerprint:
    """Fingerprint ``target``'s database (data and catalog) in one snapshot.

    Args:
        target: the database.
        like: the reference this fingerprint will be compared with: its data digests are
            computed the same way (a reference taken by an older version of the harness
            used an older row hash).
        buckets: keep large tables' digests per key range too, for a locate of differing
            rows that follows (:func:`harness.verify.data.read_data_fingerprint`); a table
            that ``like`` holds buckets of is bucketed exactly as there, so that the two
            compare bucket by bucket.

    """
    version = like.data.row_hash if like is not None else ROW_HASH
    plan: Mapping[str, Bucketing] | None = None
    if buckets:
        plan = {
            t.qualified: t.buckets.bucketing
            for t in (like.data.tables if like is not None else ())
            if t.buckets is not None
        }
    return in_snapshot(target, lambda conn: _read_both_at_once(conn, target, version, plan))


def _read_both_at_once(
    conn: Connection[Any], target: PgTarget, version: int, plan: Mapping[str, Bucketing] | None
) -> Fingerprint:
    """The catalog on ``conn`` while a second connection reads the data, in one snapshot.

    The data is one long pass per table in the server; the catalog is dozens of short
    queries: side by side, the catalog costs almost nothing. Where the snapshot cannot be
    shared (a server in recovery cannot export it), both are read here in turn.
    """
    fix_settings(conn)
    snapshot = export_snapshot(conn)
    if snapshot is None:
        return read_fingerprint(conn, version=version, buckets=plan)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint-data") as pool:
        data = pool.submit(_data_in, target, snapshot, version, plan)
        row = conn.execute("SHOW server_version").fetchone()
        catalog = read_catalog_fingerprint(conn)
        return Fingerprint(
            server_version=str(row[0]).split()[0] if row else "unknown",
            data=data.result(),
            catalog=catalog,
        )


def _data_in(
    target: PgTarget, snapshot: str, version: int, plan: Mapping[str, Bucketing] | None
) -> DataFingerprint:
    return in_shared_snapshot(
        target,
        snapshot,
        lambda c: read_data_fingerprint(c, version=version, buckets=plan),
    )


def read_fingerprint(
    conn: Connection[Any],
    *,
    version: int = ROW_HASH,
    buckets: Mapping[str, Bucketing] | None = None,
) -> Fingerprint:
    """Fingerprint on an open connection, inside the caller's transaction and snapshot.

    Args:
        conn: an open connection.
        version: the row hash version of the data digests.
        buckets: keep large tables' digests per key range too, bucketed as this maps them
            (see :func:`harness.verify.data.read_data_fingerprint`); None: not.

    """
    fix_settings(conn)
    row = conn.execute("SHOW server_version").fetchone()
    return Fingerprint(
        server_version=str(row[0]).split()[0] if row else "unknown",
        data=read_data_fingerprint(conn, version=version, buckets=buckets),
        catalog=read_catalog_fingerprint(conn),
    )


@dataclass(frozen=True)
class Comparison:
    """Every check of one comparison, and a readable diff of what differs."""

    checks: tuple[CheckResult, ...]
    diff: str

    @property
    def equal(self) -> bool:
        """True when no critical check failed."""
        return all(c.ok or not c.critical for c in self.checks)

    def failed(self) -> list[CheckResult]:
        """The critical checks that failed."""
        return [c for c in self.checks if c.critical and not c.ok]


def compare(
    expected: Fingerprint,
    actual: Fingerprint,
    *,
    tables: set[str] | None = None,
    catalog: bool = True,
    ignore: tuple[str, ...] = (),
) -> Comparison:
    """Compare ``actual`` with ``expected``; never stops at the first difference.

    Args:
        expected: the reference (before the disaster, or the backup's).
        actual: what is there now.
        tables: compare only these ``schema.table`` names (partial recovery).
        catalog: also compare the catalog sections.
        ignore: skip tables and catalog objects whose name contains one of these (such as
            the ``_drill_kept_`` copies a single-table restore leaves).

    """
    if ignore:
        expected, actual = _without(expected, ignore), _without(actual, ignore)
    checks = compare_data(expected.data, actual.data, tables=tables)
    diff_lines: list[str] = []
    for check in checks:
        if not check.ok:
            diff_lines.append(f"{check.name}: {check.detail}")
    if catalog and _catalog_format(expected) != _catalog_format(actual):
        # The sections changed meaning between formats (privileges, above all): comparing
        # them would report every ACL as changed. Say so instead of failing or passing.
        older = min(expected.format, actual.format)
        checks.append(
            CheckResult(
                "catalog",
                ok=False,
                critical=False,
                detail=f"not compared: one fingerprint has format {older}, taken by an older "
                f"version of the harness; take a new backup to compare the catalog",
            )
        )
    elif catalog:
        # Roles of the reference: what a privilege on the compared side may involve.
        known = frozenset(expected.catalog.section("roles"))
        names = sorted(set(expected.catalog.sections) | set(actual.catalog.sections))
        for name in names:
            section_checks, lines = _compare_section(
                name, expected.catalog.section(name), actual.catalog.section(name), known
            )
            checks += section_checks
            diff_lines += lines
    return Comparison(checks=tuple(checks), diff="\n".join(diff_lines))


def _catalog_format(fingerprint: Fingerprint) -> int:
    # The catalog sections changed meaning from format 1 to 2, not since.
    return min(fingerprint.format, 2)


def _without(fingerprint: Fingerprint, ignore: tuple[str, ...]) -> Fingerprint:
    def keep(name: str) -> bool:
        return not any(part in name for part in ignore)

    return Fingerprint(
        server_version=fingerprint.server_version,
        data=DataFingerprint(
            tables=tuple(t for t in fingerprint.data.tables if keep(t.qualified)),
            large_objects=fingerprint.data.large_objects,
            row_hash=fingerprint.data.row_hash,
        ),
        catalog=CatalogFingerprint(
            sections={
                name: tuple(row for row in rows if keep(row[0]))
                for name, rows in fingerprint.catalog.sections.items()
            }
        ),
        format=fingerprint.format,
    )


def compare_data(
    expected: DataFingerprint, actual: DataFingerprint, *, tables: set[str] | None = None
) -> list[CheckResult]:
    """One check per table, and one for the large objects when the reference has them.

    A table's check compares its exact row count, content digest and population state.
    """
    checks = []
    wanted = {t.qualified: t for t in expected.tables}
    have = {t.qualified: t for t in actual.tables}
    versions = (expected.row_hash, actual.row_hash)
    for name in sorted(set(wanted) | set(have)):
        if tables is not None and name not in tables:
            continue
        ok, detail = _table_verdict(wanted.get(name), have.get(name), versions)
        checks.append(CheckResult(f"data {name}", ok=ok, critical=True, detail=detail))
    if expected.large_objects is not None and tables is None:
        ok, detail = _large_objects_verdict(expected.large_objects, actual.large_objects)
        checks.append(CheckResult("data large objects", ok=ok, critical=True, detail=detail))
    return checks


def _versions_differ(expected: int, actual: int) -> str:
    return (
        f"content not compared: the reference's digests use row hash version {expected}, "
        f"these version {actual}; take this fingerprint with take_fingerprint(..., "
        "like=reference)"
    )


def _table_verdict(
    before: TableDigest | None, after: TableDigest | None, versions: tuple[int, int] = (1, 1)
) -> tuple[bool, str]:
    if before is None:
        return False, "table exists now but not in the reference"
    if after is None:
        return False, f"table is missing (reference had {before.rows} rows)"
    if before.populated != after.populated:
        if after.populated:
            return False, f"populated now ({after.rows} rows), not populated in the reference"
        return False, f"not populated now, reference had {before.rows} rows"
    if not after.populated:
        return True, "not populated, as in the reference"
    if after.rows < 0:
        return False, after.digest  # its pages could not be read
    if before.rows != after.rows:
        return False, f"{after.rows} rows, reference had {before.rows}"
    if versions[0] != versions[1]:
        return False, f"same {after.rows} rows, but {_versions_differ(*versions)}"
    if before.digest != after.digest:
        return False, f"same {after.rows} rows but different content"
    return True, f"{after.rows} rows, content identical"


def _large_objects_verdict(
    before: LargeObjectDigest, after: LargeObjectDigest | None
) -> tuple[bool, str]:
    if after is None:
        return False, f"not taken here (reference had {before.count} large objects)"
    if after.digest.startswith("unreadable"):
        return False, after.digest
    if before.count != after.count:
        return False, f"{after.count} large objects, reference had {before.count}"
    if before.digest != after.digest:
        return False, f"same {after.count} large objects but different content"
    return True, f"{after.count} large objects, content identical"


def classify_extras(
    section: str, extra: list[str], known_roles: frozenset[str]
) -> tuple[list[str], list[str]]:
    """Split objects present only on the compared side into failures and mere notes.

    Anything extra inside the database (a grant, a policy, a function ...) changes what the
    restored database allows: it fails. Roles are cluster-wide, and a restore target may
    have its own (a platform's administrators, other databases' owners): a role the
    reference does not have at all is only reported. A membership is reported only when
    neither side of it is a role of the reference; one that gives a reference role more
    privileges, or gives one of them to another role, fails.

    Args:
        section: the catalog section.
        extra: names present only on the compared side.
        known_roles: the reference's roles.

    Returns:
        ``(failing, informational)`` names.

    """
    if section == "roles":
        return [], extra
    if section != "memberships":
        return extra, []
    failing: list[str] = []
    informational: list[str] = []
    for key in extra:
        involved = _membership_roles(key)
        (failing if involved & known_roles else informational).append(key)
    return failing, informational


def _membership_roles(key: str) -> set[str]:
    """Every role name that ``member in role`` may stand for.

    Role names may themselves contain `` in ``: every way of splitting is taken, so that a
    reference role is never missed.
    """
    names: set[str] = set()
    start = 0
    while (at := key.find(" in ", start)) >= 0:
        names |= {key[:at], key[at + 4 :]}
        start = at + 1
    return names


def _compare_section(
    name: str, expected: dict[str, str], actual: dict[str, str], known_roles: frozenset[str]
) -> tuple[list[CheckResult], list[str]]:
    missing = sorted(set(expected) - set(actual))
    extra, outside = classify_extras(name, sorted(set(actual) - set(expected)), known_roles)
    notes: list[CheckResult] = []
    if outside:
        notes.append(
            CheckResult(
                f"catalog {name} (extra)",
                ok=False,
                critical=False,
                detail=f"present only on this server, outside the reference's roles: "
                f"{', '.join(outside)}",
            )
        )
    changed = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    lines: list[str] = []
    for key in missing:
        lines.append(f"- {name}: {key}: {expected[key]}")
    for key in extra:
        lines.append(f"+ {name}: {key}: {actual[key]}")
    for key in changed:
        lines += [f"~ {name}: {key}"] + [
            "    " + line
            for line in difflib.unified_diff(
                expected[key].splitlines(), actual[key].splitlines(), lineterm="", n=1
            )
            if not line.startswith(("---", "+++"))
        ]
    if not (missing or extra or changed):
        same = CheckResult(
            f"catalog {name}", ok=True, critical=True, detail=f"{len(expected)} objects identical"
        )
        return [same, *notes], lines
    parts = []
    for label, keys in (("missing", missing), ("extra", extra), ("changed", changed)):
        if keys:
            shown = ", ".join(keys[:_SHOWN]) + (
                f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
            )
            parts.append(f"{label}: {shown}")
    return [
        CheckResult(f"catalog {name}", ok=False, critical=True, detail="; ".join(parts)),
        *notes,
    ], lines
