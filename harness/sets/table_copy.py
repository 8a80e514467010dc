"""Repair damaged tables of a live database from a copy recovered to a point in time.

After a partial corruption at time T, a copy of the cluster recovered to just before T (see
:mod:`harness.sets.pitr`) holds every damaged table as it was at T, including what changed
after the last base backup. :func:`repair_tables` replaces the damaged tables' rows in the
live database with the copy's, streaming them with binary ``COPY`` from one server to the
other; the rest of the live database (and everything written to it after T) is untouched.

All tables are repaired in one transaction: every one, or none. The current rows of each
are kept in a side table (``_drill_kept_<name>_<time>``) first, unless its pages are
unreadable. While the rows are replaced, ``session_replication_role = replica`` pauses
user triggers (an ``updated_at`` trigger would rewrite the rows) and foreign-key checks
(the rows come back with the keys they had, so every reference holds again), and row
level security is off, so that a policy raises an error instead of silently filtering.
Both need a superuser, as the rest of a drill does. Each table is then checked against
the copy by row count and content digest; any difference rolls everything back.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import Connection, sql

from harness.config import PgTarget
from harness.errors import RestoreError, VerificationFailed
from harness.pg.sql import connect, count_in, explain_db_error, require_destructive
from harness.redact import get_logger
from harness.verify.checks import CheckResult, failures, render
from harness.verify.data import table_digest

log = get_logger(__name__)


@dataclass(frozen=True)
class TableRepair:
    """What the repair did to one table."""

    table: str
    rows_before: int  # -1: unreadable, not counted
    rows_after: int
    kept_copy: str
    check: CheckResult


@dataclass(frozen=True)
class RepairResult:
    """Every table repaired in the one transaction, and how long it took."""

    tables: tuple[TableRepair, ...]
    seconds: float

    @property
    def checks(self) -> tuple[CheckResult, ...]:
        """One content check per table."""
        return tuple(t.check for t in self.tables)


def repair_tables(
    source: PgTarget,
    target: PgTarget,
    tables: Sequence[str],
    *,
    unreadable: Collection[str] = (),
) -> RepairResult:
    """Replace the rows of ``tables`` in ``target`` with those of ``source``, in one go.

    Args:
        source: the recovered copy (may still be paused in recovery: it is only read).
        target: the live database.
        tables: ``schema.table`` names to repair.
        unreadable: those of ``tables`` whose pages are damaged: emptied with TRUNCATE
            (their pages are never read) and not kept aside.

    Raises:
        RestoreError: a table is missing on either side, or a statement failed (rolled
            back; the live tables are as they were).
        VerificationFailed: a repaired table differs from the copy (rolled back).
        UnsafeTargetError: the target may not take destructive steps.

    """
    require_destructive(target, f"replace the rows of {', '.join(tables)}")
    started = time.monotonic()
    with connect(source) as src, connect(target) as dst:
        try:
            dst.execute("SET LOCAL session_replication_role = replica")
            dst.execute("SET LOCAL row_security = off")
            done = tuple(
                _repair_one(src, dst, qualified, unreadable=qualified in unreadable)
                for qualified in tables
            )
            bad = failures([t.check for t in done])
            if bad:
                raise VerificationFailed(
                    f"the repaired tables differ from the recovered copy; rolled back:\n"
                    f"{render(bad)}",
                    checks=[t.check for t in done],
                )
            dst.commit()
        except psycopg.Error as exc:
            _rollback(dst)
            raise RestoreError(
                f"repairing {', '.join(tables)} on {target.display()} failed: "
                f"{explain_db_error(exc)}; rolled back, the tables are as they were",
                phase="repair",
            ) from exc
        except BaseException:
            _rollback(dst)
            raise
    seconds = time.monotonic() - started
    log.info("repaired %s from %s in %.1f s", ", ".join(tables), source.display(), seconds)
    return RepairResult(tables=done, seconds=seconds)


def _rollback(conn: Connection[Any]) -> None:
    if not conn.closed:
        conn.rollback()


def _split(qualified: str) -> tuple[str, str]:
    schema, _, name = qualified.rpartition(".")
    return schema or "public", name


def _repair_one(
    src: Connection[Any], dst: Connection[Any], qualified: str, *, unreadable: bool
) -> TableRepair:
    schema, name = _split(qualified)
    table = sql.Identifier(schema, name)
    regclass = table.as_string(dst)
    for conn, side in ((src, "recovered copy"), (dst, "live database")):
        if conn.execute("SELECT to_regclass(%s)", (regclass,)).fetchone() == (None,):
            raise RestoreError(
                f"{schema}.{name} does not exist in the {side}; recover the whole cluster instead",
                phase="repair",
            )
    dst.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
    if unreadable:
        rows_before, kept_copy = -1, "nothing (its pages are unreadable)"
        # TRUNCATE gives the table a new, empty file: damaged pages are never read.
        dst.execute(sql.SQL("TRUNCATE ONLY {}").format(table))
    else:
        rows_before = count_in(dst, table)
        kept = f"_drill_kept_{name}_{datetime.now(UTC):%Y%m%d%H%M%S}"[:63]
        dst.execute(
            sql.SQL("CREATE TABLE {} AS SELECT * FROM ONLY {}").format(
                sql.Identifier(schema, kept), table
            )
        )
        kept_copy = f"{schema}.{kept}"
        dst.execute(sql.SQL("DELETE FROM ONLY {}").format(table))
    # Stored generated columns are computed again on insert; COPY may not name them.
    columns = [
        str(row[0])
        for row in dst.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            (regclass,),
        ).fetchall()
    ]
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    # Binary COPY between two servers of the same cluster's history: types are identical.
    out = sql.SQL("COPY (SELECT {} FROM ONLY {}) TO STDOUT (FORMAT BINARY)").format(cols, table)
    into = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, cols)
    with src.cursor().copy(out) as reader, dst.cursor().copy(into) as writer:
        for block in reader:
            writer.write(block)
    want, have = table_digest(src, schema, name), table_digest(dst, schema, name)
    same = (want.rows, want.digest) == (have.rows, have.digest)
    check = CheckResult(
        f"repaired {schema}.{name}",
        ok=same,
        critical=True,
        detail=f"{have.rows} rows, identical to the recovered copy"
        if same
        else f"{have.rows} rows (copy: {want.rows}), content digest differs",
    )
    return TableRepair(
        table=f"{schema}.{name}",
        rows_before=rows_before,
        rows_after=have.rows,
        kept_copy=kept_copy,
        check=check,
    )
