"""Session settings that make every value's text form the same on every server.

Text output of timestamps, intervals, floats, bytea and money depends on session settings;
regclass and similar on the search path. A fingerprint is taken with all of them fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from psycopg import Connection

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
    for name, value in SETTINGS:
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def in_snapshot(target: PgTarget, read: Callable[[Connection[Any]], T]) -> T:
    """Run ``read`` in one read-only REPEATABLE READ snapshot with :data:`SETTINGS` fixed."""
    with connect(target) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        fix_settings(conn)
        result = read(conn)
        conn.rollback()
    return result
