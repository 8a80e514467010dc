"""Session settings that make every value's text form the same on every server.

Text output of timestamps, intervals, floats, bytea and money depends on session settings;
regclass and similar on the search path. A fingerprint is taken with all of them fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import Connection, sql

from harness.config import PgTarget
from harness.pg.sql import connect

T = TypeVar("T")

SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),  # shortest exact form: a change in the last bit shows
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("search_path", "pg_catalog"),
    ("row_security", "off"),  # an error instead of a silently filtered fingerprint
)


def fix_settings(conn: Connection[Any]) -> None:
    """Apply :data:`SETTINGS` for the rest of the session."""
    # One statement, one round trip.
    calls = sql.SQL(", ").join(sql.SQL("set_config(%s, %s, false)") for _ in SETTINGS)
    conn.execute(sql.SQL("SELECT {}").format(calls), [v for pair in SETTINGS for v in pair])


def in_snapshot(target: PgTarget, read: Callable[[Connection[Any]], T]) -> T:
    """Run ``read`` in one read-only REPEATABLE READ snapshot with :data:`SETTINGS` fixed."""
    with connect(target) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        fix_settings(conn)
        result = read(conn)
        conn.rollback()
    return result


def export_snapshot(conn: Connection[Any]) -> str | None:
    """Export the snapshot of ``conn``'s transaction for other sessions to share.

    Returns:
        Its id, or None where the server cannot export one (a server in recovery); the
        transaction goes on either way.

    """
    conn.execute("SAVEPOINT drill_export")
    try:
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        conn.execute("RELEASE SAVEPOINT drill_export")
    except psycopg.Error:
        conn.execute("ROLLBACK TO SAVEPOINT drill_export")
        return None
    return str(row[0]) if row else None


def in_shared_snapshot(target: PgTarget, snapshot: str, read: Callable[[Connection[Any]], T]) -> T:
    """Run ``read`` on a new connection in the exported ``snapshot``, :data:`SETTINGS` fixed.

    The exporting transaction must stay open until this returns.
    """
    with connect(target) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        # SET takes no parameters: the snapshot id is quoted as a literal.
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        fix_settings(conn)
        result = read(conn)
        conn.rollback()
    return result
