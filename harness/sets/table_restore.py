"""Restore one table's rows into a live database, in one transaction (P3).

The table's rows are streamed out of the set's dump into a temporary table, checked against
the manifest's count, and then either replace the table's rows or (``missing_only``) fill in
only the rows whose primary key is absent, so writes made after the backup survive an
accidental DELETE. The current rows are kept in a side table first; user triggers are paused
so that restored rows stay byte-identical (an ``updated_at`` trigger would otherwise rewrite
them); row level security is switched off so that a policy raises an error instead of
silently filtering. Any mismatch rolls everything back and says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import Connection, sql

from harness.config import PgTarget
from harness.errors import RestoreError, VerificationFailed
from harness.pg.binaries import client_tools_for
from harness.pg.sql import connect, count_in, explain_db_error, require_destructive
from harness.proc import run
from harness.redact import get_logger
from harness.sets.check import require_good_set
from harness.sets.location import Location
from harness.sets.manifest import Manifest
from harness.verify.checks import CheckResult, failures, render

log = get_logger(__name__)

_ENABLE = {"O": "ENABLE TRIGGER", "A": "ENABLE ALWAYS TRIGGER", "R": "ENABLE REPLICA TRIGGER"}


@dataclass(frozen=True)
class TableRestoreResult:
    """What a single-table restore did."""

    table: str
    mode: str
    rows_before: int
    rows_after: int
    rows_written: int
    kept_copy: str
    checks: tuple[CheckResult, ...]
    seconds: float

    def summary(self) -> str:
        """One paragraph for the terminal."""
        return (
            f"{self.table}: {self.mode} restore committed in {self.seconds:.1f} s; rows "
            f"{self.rows_before} -> {self.rows_after} ({self.rows_written} written); "
            f"previous rows kept in {self.kept_copy}\n{render(self.checks)}"
        )


def restore_table(
    location: Location,
    target: PgTarget,
    qualified: str,
    *,
    workdir: Path,
    missing_only: bool = False,
    unreadable: bool = False,
    progress: Callable[[str], None] | None = None,
) -> TableRestoreResult:
    """Restore ``schema.table`` from the set at ``location`` into the live ``target``.

    Args:
        location: the backup set.
        target: the live database.
        qualified: ``schema.table``.
        workdir: scratch space.
        missing_only: insert only rows whose primary key is absent.
        unreadable: the table's pages are damaged (checksum failures): its rows cannot be
            read, so none are kept aside and it is emptied with TRUNCATE.
        progress: called with one line per step.

    Raises:
        VerificationFailed: the set failed its checks, or the result did not verify (rolled
            back).
        RestoreError: the table is not in the set, has dependents or no primary key where
            one is needed, or a statement failed (rolled back; database errors included).
        UnsafeTargetError: a full restore on a target that may not take destructive steps.

    """
    say = progress or (lambda line: log.info("%s", line))
    started = time.monotonic()
    schema, _, name = qualified.rpartition(".")
    schema = schema or "public"
    say(f"checking {location.uri}")
    checked = require_good_set(location, workdir=workdir)
    manifest = checked.manifest
    expected = next((t for t in manifest.tables if (t.schema, t.name) == (schema, name)), None)
    if expected is None:
        raise RestoreError(
            f"{schema}.{name} is not in the backup set taken {manifest.created_at}", phase="target"
        )
    if not missing_only:
        require_destructive(target, f"replace the rows of {schema}.{name}")
    data = workdir / "table.sql"
    say(f"extracting {schema}.{name} from the dump")
    tools = client_tools_for(manifest.source_major)
    run(
        [
            tools.tool("pg_restore"),
            "--data-only",
            "--schema",
            schema,
            "--table",
            name,
            "--file",
            data,
            checked.root / manifest.dump_path(),
        ],
        timeout=3600,
    )
    with connect(target) as conn:
        try:
            result = _apply(
                conn,
                schema,
                name,
                data,
                manifest,
                expected.rows,
                missing_only=missing_only,
                unreadable=unreadable,
                say=say,
            )
            conn.commit()
        except psycopg.Error as exc:
            _rollback(conn)
            raise RestoreError(
                f"restoring {schema}.{name} on {target.display()} failed: "
                f"{explain_db_error(exc)}; rolled back, the table is as it was",
                phase="table",
            ) from exc
        except BaseException:
            _rollback(conn)
            raise
    seconds = time.monotonic() - started
    say(f"committed in {seconds:.1f} s")
    return TableRestoreResult(**{**result, "seconds": seconds})


def _rollback(conn: Connection[Any]) -> None:
    """Roll back after a failure; a connection the server already closed needs nothing."""
    if not conn.closed:
        conn.rollback()


def _apply(
    conn: Connection[Any],
    schema: str,
    name: str,
    data: Path,
    manifest: Manifest,
    expected_rows: int,
    *,
    missing_only: bool,
    unreadable: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    table = sql.Identifier(schema, name)
    regclass = table.as_string(conn)
    conn.execute("SET LOCAL row_security = off")
    if conn.execute("SELECT to_regclass(%s)", (regclass,)).fetchone() == (None,):
        raise RestoreError(
            f"{schema}.{name} does not exist in the target database; restore the whole set instead",
            phase="target",
        )
    mode = "rows-missing-only" if missing_only else "full"
    conn.execute(
        sql.SQL("LOCK TABLE {} IN {} MODE").format(
            table, sql.SQL("SHARE ROW EXCLUSIVE" if missing_only else "EXCLUSIVE")
        )
    )
    keys = [
        str(r[0])
        for r in conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = %s::regclass "
            "AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
            (regclass,),
        ).fetchall()
    ]
    if missing_only and not keys:
        raise RestoreError(
            f"{schema}.{name} has no primary key, so missing rows cannot be "
            "told apart; restore it in full instead",
            phase="target",
        )
    if not missing_only:
        dependents = [
            f"{r[0]} ({r[1]})"
            for r in conn.execute(
                "SELECT n.nspname || '.' || c.relname, k.conname FROM pg_constraint k "
                "JOIN pg_class c ON c.oid = k.conrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE k.contype = 'f' AND k.confrelid = %s::regclass "
                "AND k.conrelid <> k.confrelid ORDER BY 1",
                (regclass,),
            ).fetchall()
        ]
        if dependents:
            raise RestoreError(
                f"replacing all rows of {schema}.{name} would break or cascade into the tables "
                f"that reference it: {', '.join(dependents)}; use --rows-missing-only, or "
                "restore those tables too",
                phase="target",
            )
    if unreadable:
        if missing_only:
            raise RestoreError("an unreadable table can only be restored in full", phase="target")
        rows_before, kept_copy = -1, "nothing (its pages are unreadable)"
    else:
        rows_before = count_in(conn, table)
        kept = f"_drill_kept_{name}_{datetime.now(UTC):%Y%m%d%H%M%S}"[:63]
        conn.execute(
            sql.SQL("CREATE TABLE {} AS TABLE {}").format(sql.Identifier(schema, kept), table)
        )
        kept_copy = f"{schema}.{kept}"
        say(f"kept the current {rows_before} rows in {kept_copy}")
    columns = _load_incoming(conn, table, data)
    incoming = count_in(conn, sql.Identifier("_drill_incoming"))
    if incoming != expected_rows:
        raise RestoreError(
            f"the dump holds {incoming} rows of {schema}.{name} but the manifest "
            f"counted {expected_rows}",
            phase="extract",
        )
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    triggers = conn.execute(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass "
        "AND NOT tgisinternal AND tgenabled <> 'D'",
        (regclass,),
    ).fetchall()
    for tgname, _ in triggers:
        conn.execute(
            sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(table, sql.Identifier(tgname))
        )
    if missing_only:
        match = _key_match(keys)
        written = conn.execute(
            sql.SQL(
                "INSERT INTO {t} ({c}) OVERRIDING SYSTEM VALUE SELECT {c} FROM _drill_incoming i "
                "WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE {m})"
            ).format(t=table, c=cols, m=match)
        ).rowcount
    else:
        # TRUNCATE gives the table a new, empty file: damaged pages are never read.
        emptying = "TRUNCATE {}" if unreadable else "DELETE FROM {}"
        conn.execute(sql.SQL(emptying).format(table))
        written = conn.execute(
            sql.SQL(
                "INSERT INTO {t} ({c}) OVERRIDING SYSTEM VALUE SELECT {c} FROM _drill_incoming"
            ).format(t=table, c=cols)
        ).rowcount
    for tgname, state in triggers:
        # DDL: the ENABLE form is chosen from a fixed table keyed by the catalog state.
        conn.execute(
            sql.SQL("ALTER TABLE {} {} {}").format(
                table,
                sql.SQL(_ENABLE[state.decode() if isinstance(state, bytes) else str(state)]),
                sql.Identifier(tgname),
            )
        )
    _advance_sequences(conn, regclass, manifest)
    checks = _verify(conn, table, cols, keys, missing_only=missing_only)
    bad = failures(checks)
    if bad:
        raise VerificationFailed(
            f"{schema}.{name} did not verify; rolled back:\n{render(bad)}", checks=checks
        )
    return {
        "table": f"{schema}.{name}",
        "mode": mode,
        "rows_before": rows_before,
        "rows_after": count_in(conn, table),
        "rows_written": written,
        "kept_copy": kept_copy,
        "checks": checks,
    }


def _load_incoming(conn: Connection[Any], table: sql.Identifier, data: Path) -> list[str]:
    """Stream the COPY block of ``data`` into a temp table; return its column list."""
    lines = _copy_block(data)
    header = next(lines, None)
    if header is None:
        raise RestoreError("the dump holds no data block for the table", phase="extract")
    columns = [c.strip().strip('"') for c in header.split("(", 1)[1].rsplit(")", 1)[0].split(",")]
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE _drill_incoming (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP"
        ).format(table)
    )
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    with conn.cursor().copy(sql.SQL("COPY _drill_incoming ({}) FROM STDIN").format(cols)) as copy:
        for line in lines:
            copy.write(line)
    return columns


def _copy_block(data: Path) -> Iterator[str]:
    r"""Yield the COPY header line, then each data line (with newline) up to ``\.``."""
    with data.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;"):
                yield line
                break
        else:
            return
        for line in f:
            if line.rstrip("\n") == "\\.":
                return
            yield line


def _advance_sequences(conn: Connection[Any], regclass: str, manifest: Manifest) -> None:
    """Never move a live sequence backwards: ids handed out after the backup stay unique."""
    for schema, seq in conn.execute(
        "SELECT s.relnamespace::regnamespace::text, s.relname FROM pg_class s "
        "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
        "WHERE s.relkind = 'S' AND d.refobjid = %s::regclass AND d.deptype IN ('a', 'i')",
        (regclass,),
    ).fetchall():
        state = next((s for s in manifest.sequences if (s.schema, s.name) == (schema, seq)), None)
        if state is None or state.last_value is None:
            continue
        conn.execute(
            sql.SQL("SELECT setval({0}, greatest((SELECT last_value FROM {1}), %s))").format(
                sql.Literal(sql.Identifier(schema, seq).as_string(conn)),
                sql.Identifier(schema, seq),
            ),
            (state.last_value,),
        )


def _key_match(keys: list[str]) -> sql.Composed:
    """``t.k1 = i.k1 AND ...`` between the live table (t) and the incoming rows (i)."""
    # Key columns are NOT NULL (primary key), so plain equality is exact, and it lets the
    # planner use a hash anti-join: IS NOT DISTINCT FROM would force a quadratic nested loop.
    return sql.SQL(" AND ").join(sql.SQL("t.{0} = i.{0}").format(sql.Identifier(k)) for k in keys)


def _verify(
    conn: Connection[Any],
    table: sql.Identifier,
    cols: sql.Composable,
    keys: list[str],
    *,
    missing_only: bool,
) -> tuple[CheckResult, ...]:
    if missing_only:
        match = _key_match(keys)
        absent = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM _drill_incoming i WHERE NOT EXISTS "
                "(SELECT 1 FROM {t} t WHERE {m})"
            ).format(t=table, m=match)
        ).fetchone()
        n = int(absent[0]) if absent else -1
        return (
            CheckResult(
                "backed-up keys present",
                ok=n == 0,
                critical=True,
                detail="every backed-up row's key is present"
                if n == 0
                else f"{n} backed-up rows are still missing",
            ),
        )
    diff = conn.execute(
        sql.SQL(
            "SELECT (SELECT count(*) FROM (SELECT x::text FROM (SELECT {c} FROM {t}) x EXCEPT ALL "
            "SELECT y::text FROM (SELECT {c} FROM _drill_incoming) y) a), "
            "(SELECT count(*) FROM (SELECT y::text FROM (SELECT {c} FROM _drill_incoming) y "
            "EXCEPT ALL SELECT x::text FROM (SELECT {c} FROM {t}) x) b)"
        ).format(c=cols, t=table)
    ).fetchone()
    extra, missing = (int(diff[0]), int(diff[1])) if diff else (-1, -1)
    return (
        CheckResult(
            "table content",
            ok=extra == 0 and missing == 0,
            critical=True,
            detail="rows identical to the backup"
            if extra == missing == 0
            else f"{extra} rows not in the backup, {missing} backup rows absent",
        ),
    )
