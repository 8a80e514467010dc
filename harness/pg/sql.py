"""Connections and small composed queries.

SQL is composed with :mod:`psycopg.sql` only: ``Identifier`` for names, parameters for values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg import Connection, OperationalError, sql

from harness.config import PgTarget
from harness.errors import ConnectError, OptionHint, UnsafeTargetError
from harness.redact import get_logger, redact

log = get_logger(__name__)


def connect(target: PgTarget, *, autocommit: bool = False) -> Connection[tuple[Any, ...]]:
    """Open a connection to ``target``.

    Raises:
        ConnectError: the server is unreachable or refused the login; the message names
            the address (without the password) and what to check.

    """
    try:
        return psycopg.connect(target.conninfo(), autocommit=autocommit)
    except OperationalError as exc:
        reason = redact(str(exc)).strip().splitlines()
        hint = "check the host, port, user, password and database name"
        if any("password authentication failed" in line for line in reason):
            hint = "the password was rejected: check the DSN's password"
        elif any("Connection refused" in line or "timeout" in line for line in reason):
            hint = "is the server running and reachable from this machine?"
        raise ConnectError(
            f"cannot connect to {target.display()}: {reason[-1] if reason else exc!s}; {hint}"
        ) from exc


def server_version(target: PgTarget) -> str:
    """Return the server's ``server_version`` setting, e.g. ``17.10``."""
    with connect(target) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "unknown"


def require_destructive(target: PgTarget, action: str) -> None:
    """Refuse a destructive ``action`` on a target that may not take one.

    Raises:
        UnsafeTargetError: the target is external and its host is not in the allow-list.

    """
    if not target.destructive_ok:
        raise UnsafeTargetError(
            f"refusing to {action} on {target.display()}: it is an external target and its "
            f"host {target.host!r} is not in the allow-list; if this host may take "
            "destructive steps",
            hint=OptionHint("allow_destructive", target.host),
        )


# Remedies for the server errors a user can fix, by SQLSTATE class or code.
_REMEDIES = {
    "42501": "the role lacks a privilege this step needs: run it as a role that has it "
    "(a restore needs CREATEDB, and CREATEROLE to create or alter roles)",
    "53": "the server ran out of a resource (disk, memory or connections)",
    "57P01": "the server shut down or the session was terminated",
    "25006": "the server or session is read-only (a standby?): use the primary",
}


def explain_db_error(exc: psycopg.Error, *, remedy: bool = True) -> str:
    """One line for a server error: its message, SQLSTATE and, where known, what to do.

    Secrets are redacted; the DETAIL/HINT lines of the server are dropped (they may quote
    data), except that a known SQLSTATE adds a remedy of our own (unless ``remedy`` is
    False, for callers that give a more precise one).
    """
    lines = redact(str(exc)).strip().splitlines()
    message = lines[0] if lines else type(exc).__name__
    state = getattr(exc, "sqlstate", None) or ""
    known = _REMEDIES.get(state) or _REMEDIES.get(state[:2]) if remedy else None
    code = f" (SQLSTATE {state})" if state else ""
    return f"{message}{code}" + (f"; {known}" if known else "")


def create_database(target: PgTarget, name: str) -> None:
    """Create database ``name`` on ``target``'s server."""
    with connect(target.with_dbname("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(target: PgTarget, name: str) -> None:
    """Drop database ``name`` after ending its sessions; a destructive step.

    Raises:
        UnsafeTargetError: ``target`` may not take destructive steps.

    """
    require_destructive(target, f"drop database {name!r}")
    with connect(target.with_dbname("postgres"), autocommit=True) as conn:
        terminate_sessions(conn, name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    log.info("dropped database %s on %s", name, target.display())


def database_exists(target: PgTarget, name: str) -> bool:
    """Tell whether database ``name`` exists on ``target``'s server."""
    with connect(target.with_dbname("postgres")) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def count_rows(target: PgTarget, schema: str, table: str) -> int:
    """Exact row count of ``schema.table``."""
    with connect(target) as conn:
        return count_in(conn, sql.Identifier(schema, table))


def count_in(conn: Connection[Any], relation: sql.Identifier) -> int:
    """Exact row count of ``relation`` on an open connection."""
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(relation)).fetchone()
    return int(row[0]) if row else 0


def run_sql_file(target: PgTarget, path: Path) -> None:
    """Execute every statement of a trusted SQL file (a fixture) in one transaction."""
    # A fixture file is trusted DDL shipped with the project, not user input.
    script = sql.SQL(path.read_text())
    with connect(target) as conn:
        conn.execute(script)


USER_RELATIONS = """
SELECT n.nspname, c.relname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = ANY(%s)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def user_relations(conn: Connection[Any], kinds: str) -> list[tuple[str, str]]:
    """``(schema, name)`` of user relations of the given ``relkind`` letters (e.g. ``"rm"``).

    System schemas and objects belonging to extensions (which pg_dump leaves out) are
    excluded.
    """
    rows = conn.execute(USER_RELATIONS, (list(kinds),)).fetchall()
    return [(str(s), str(n)) for s, n in rows]


def sequence_positions(conn: Connection[Any]) -> list[tuple[str, str, int, bool]]:
    """``(schema, name, last_value, is_called)`` of every user sequence."""
    found = []
    for schema, name in user_relations(conn, "S"):
        row = conn.execute(
            sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(schema, name))
        ).fetchone()
        if row is not None:
            found.append((schema, name, int(row[0]), bool(row[1])))
    return found


def terminate_sessions(conn: Connection[Any], dbname: str) -> None:
    """End every other session connected to ``dbname`` (before DROP or RENAME)."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (dbname,),
    )
