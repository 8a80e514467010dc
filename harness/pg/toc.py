"""A dump's table of contents (``pg_restore --list``), sorted into the restore steps of P2.

pg_restore already orders objects by their dependencies; these steps name what is restored
for people (the dry-run plan, per-section SQL for auditors), they do not reorder anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.pg.binaries import PgBinaries
from harness.proc import run

# The restore order of the planning document (P2), with the TOC kinds each step holds.
STEPS: tuple[tuple[str, str], ...] = (
    ("extensions", "extensions"),
    ("roles", "roles, attributes, memberships and settings"),
    ("types", "enums, domains, composite types, collations"),
    ("schema", "schemas, tables, columns, defaults, constraints, sequences"),
    ("views", "views and materialized views (dependency order)"),
    ("functions", "functions, procedures, triggers, event triggers"),
    ("indexes", "indexes"),
    ("rls", "row level security flags and policies"),
    ("grants", "privileges and default privileges"),
    ("data", "table data"),
    ("sequences", "sequence values"),
    ("other", "publications, comments and settings"),
)

_KIND_STEP = {
    "EXTENSION": "extensions",
    "TYPE": "types",
    "SHELL TYPE": "types",
    "DOMAIN": "types",
    "COLLATION": "types",
    "SCHEMA": "schema",
    "TABLE": "schema",
    "SEQUENCE": "schema",
    "SEQUENCE OWNED BY": "schema",
    "DEFAULT": "schema",
    "CONSTRAINT": "schema",
    "CHECK CONSTRAINT": "schema",
    "FK CONSTRAINT": "schema",
    "TABLE ATTACH": "schema",
    "FOREIGN TABLE": "schema",
    "VIEW": "views",
    "MATERIALIZED VIEW": "views",
    "FUNCTION": "functions",
    "PROCEDURE": "functions",
    "AGGREGATE": "functions",
    "TRIGGER": "functions",
    "EVENT TRIGGER": "functions",
    "RULE": "functions",
    "CAST": "functions",
    "OPERATOR": "functions",
    "OPERATOR CLASS": "functions",
    "OPERATOR FAMILY": "functions",
    "INDEX": "indexes",
    "INDEX ATTACH": "indexes",
    "STATISTICS": "indexes",
    "ROW SECURITY": "rls",
    "POLICY": "rls",
    "ACL": "grants",
    "DEFAULT ACL": "grants",
    "TABLE DATA": "data",
    "MATERIALIZED VIEW DATA": "data",
    "BLOBS": "data",
    "BLOB": "data",
    "LARGE OBJECT": "data",
    "BLOB METADATA": "data",
    "SEQUENCE SET": "sequences",
}
# Longest kinds first, so "TABLE DATA" wins over "TABLE".
_KINDS = sorted(
    {
        *_KIND_STEP,
        "COMMENT",
        "PUBLICATION",
        "PUBLICATION TABLE",
        "PUBLICATION TABLES IN SCHEMA",
        "SUBSCRIPTION",
        "ENCODING",
        "STDSTRINGS",
        "SEARCHPATH",
        "DATABASE PROPERTIES",
        "DATABASE",
        "SECURITY LABEL",
    },
    key=len,
    reverse=True,
)
_LINE = re.compile(r"^(\d+);\s+(\d+)\s+(\d+)\s+(.*)$")


@dataclass(frozen=True)
class TocEntry:
    """One line of ``pg_restore --list``."""

    dump_id: int
    kind: str
    schema: str
    name: str
    owner: str
    line: str
    described: str = ""  # everything after the kind: "<schema> <name> <owner>", unquoted

    def names(self, schema: str, name: str) -> bool:
        """Whether this entry is about ``schema.name``.

        ``pg_restore --list`` prints names unquoted, so a schema or owner whose name holds a
        space cannot be split off reliably (``schema``/``name``/``owner`` are a best guess);
        matching the known names against the whole description can.
        """
        return self.described.startswith(f"{schema} {name} ") or self.described == (
            f"{schema} {name}"
        )

    @property
    def step(self) -> str:
        """The P2 restore step this entry belongs to."""
        if self.kind == "COMMENT":
            target_kind = self.name.split(" ", 1)[0]
            return {
                "EXTENSION": "extensions",
                "TYPE": "types",
                "DOMAIN": "types",
                "VIEW": "views",
                "MATERIALIZED": "views",
                "FUNCTION": "functions",
                "PROCEDURE": "functions",
                "TRIGGER": "functions",
                "EVENT": "functions",
                "INDEX": "indexes",
                "POLICY": "rls",
            }.get(target_kind, "schema")
        return _KIND_STEP.get(self.kind, "other")


def parse_list(text: str) -> list[TocEntry]:
    """Parse ``pg_restore --list`` output (comment lines are skipped)."""
    entries = []
    for raw in text.splitlines():
        match = _LINE.match(raw.strip())
        if not match:
            continue
        rest = match.group(4)
        kind = next((k for k in _KINDS if rest == k or rest.startswith(k + " ")), rest.split()[0])
        fields = rest[len(kind) :].split()
        schema = fields[0] if fields else "-"
        owner = fields[-1] if len(fields) >= 3 else ""
        name = " ".join(fields[1:-1]) if len(fields) >= 3 else " ".join(fields[1:])
        described = rest[len(kind) :].strip()
        entries.append(TocEntry(int(match.group(1)), kind, schema, name, owner, raw, described))
    return entries


def read_toc(binaries: PgBinaries, dump: Path) -> list[TocEntry]:
    """List a dump's contents (fails on a damaged archive).

    Raises:
        ToolFailed: pg_restore cannot read the archive.

    """
    return parse_list(run([binaries.tool("pg_restore"), "--list", dump], timeout=600).stdout)


def count_by_step(entries: list[TocEntry]) -> dict[str, int]:
    """How many objects each P2 step restores."""
    counts = {step: 0 for step, _ in STEPS}
    for entry in entries:
        counts[entry.step] += 1
    return counts


def write_section_sql(
    binaries: PgBinaries, dump: Path, entries: list[TocEntry], *, step: str, out: Path
) -> int:
    """Write the SQL of one step's objects to ``out``; return how many objects it holds."""
    chosen = [e for e in entries if e.step == step]
    if not chosen:
        return 0
    listing = out.with_suffix(".list")
    listing.write_text("\n".join(e.line for e in chosen) + "\n")
    try:
        run([binaries.tool("pg_restore"), "--use-list", listing, "--file", out, dump], timeout=600)
    finally:
        listing.unlink(missing_ok=True)
    return len(chosen)
