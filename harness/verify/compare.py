"""Whole fingerprints: taking, storing as JSON, and comparing into check results and a diff."""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from typing import Any, Self

from psycopg import Connection

from harness.config import PgTarget
from harness.errors import ManifestError
from harness.verify.catalog import CatalogFingerprint, read_catalog_fingerprint
from harness.verify.checks import CheckResult
from harness.verify.data import DataFingerprint, TableDigest, read_data_fingerprint
from harness.verify.session import fix_settings, in_snapshot

FORMAT = 1
_SHOWN = 8  # differences named per check; the diff has them all


@dataclass(frozen=True)
class Fingerprint:
    """Data and catalog fingerprint of one database."""

    server_version: str
    data: DataFingerprint
    catalog: CatalogFingerprint

    def to_json(self) -> str:
        """Serialise (stable order)."""
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Parse :meth:`to_json` output.

        Raises:
            ManifestError: not a fingerprint document of a known format.

        """
        try:
            body: dict[str, Any] = json.loads(text)
            if body.get("format") != FORMAT:
                raise ManifestError(f"fingerprint format {body.get('format')!r} is unknown")
            return cls(
                server_version=str(body["server_version"]),
                data=DataFingerprint(
                    tables=tuple(
                        TableDigest(**{**t, "key": tuple(t["key"])}) for t in body["data"]["tables"]
                    )
                ),
                catalog=CatalogFingerprint(
                    sections={
                        name: tuple((str(k), str(v)) for k, v in rows)
                        for name, rows in body["catalog"]["sections"].items()
                    }
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"not a fingerprint document: {exc}") from exc


def take_fingerprint(target: PgTarget) -> Fingerprint:
    """Fingerprint ``target``'s database (data and catalog) in one snapshot."""
    return in_snapshot(target, read_fingerprint)


def read_fingerprint(conn: Connection[Any]) -> Fingerprint:
    """Fingerprint on an open connection, inside the caller's transaction and snapshot."""
    fix_settings(conn)
    row = conn.execute("SHOW server_version").fetchone()
    return Fingerprint(
        server_version=str(row[0]).split()[0] if row else "unknown",
        data=read_data_fingerprint(conn),
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
    if catalog:
        names = sorted(set(expected.catalog.sections) | set(actual.catalog.sections))
        for name in names:
            section_checks, lines = _compare_section(
                name, expected.catalog.section(name), actual.catalog.section(name)
            )
            checks += section_checks
            diff_lines += lines
    return Comparison(checks=tuple(checks), diff="\n".join(diff_lines))


def _without(fingerprint: Fingerprint, ignore: tuple[str, ...]) -> Fingerprint:
    def keep(name: str) -> bool:
        return not any(part in name for part in ignore)

    return Fingerprint(
        server_version=fingerprint.server_version,
        data=DataFingerprint(tables=tuple(t for t in fingerprint.data.tables if keep(t.qualified))),
        catalog=CatalogFingerprint(
            sections={
                name: tuple(row for row in rows if keep(row[0]))
                for name, rows in fingerprint.catalog.sections.items()
            }
        ),
    )


def compare_data(
    expected: DataFingerprint, actual: DataFingerprint, *, tables: set[str] | None = None
) -> list[CheckResult]:
    """One check per table: exact row count and content digest."""
    checks = []
    wanted = {t.qualified: t for t in expected.tables}
    have = {t.qualified: t for t in actual.tables}
    for name in sorted(set(wanted) | set(have)):
        if tables is not None and name not in tables:
            continue
        ok, detail = _table_verdict(wanted.get(name), have.get(name))
        checks.append(CheckResult(f"data {name}", ok=ok, critical=True, detail=detail))
    return checks


def _table_verdict(before: TableDigest | None, after: TableDigest | None) -> tuple[bool, str]:
    if before is None:
        return False, "table exists now but not in the reference"
    if after is None:
        return False, f"table is missing (reference had {before.rows} rows)"
    if after.rows < 0:
        return False, after.digest  # its pages could not be read
    if before.rows != after.rows:
        return False, f"{after.rows} rows, reference had {before.rows}"
    if before.digest != after.digest:
        return False, f"same {after.rows} rows but different content"
    return True, f"{after.rows} rows, content identical"


# Cluster-wide sections: a restore target may hold roles of its own (other databases,
# the platform's): extra ones there are worth a warning, not a failure.
EXTRAS_TOLERATED = frozenset({"roles", "memberships"})


def _compare_section(
    name: str, expected: dict[str, str], actual: dict[str, str]
) -> tuple[list[CheckResult], list[str]]:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    notes: list[CheckResult] = []
    if name in EXTRAS_TOLERATED and extra:
        notes.append(
            CheckResult(
                f"catalog {name} (extra)",
                ok=False,
                critical=False,
                detail=f"present only on this server: {', '.join(extra)}",
            )
        )
        extra = []
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
