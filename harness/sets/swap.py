"""Database-level steps of a restore: the scratch database, and putting it in place.

A restore builds its database under a temporary name and only a verified result is given the
real name. When a database of that name exists, it is renamed aside first
(``<name>_drill_old_<stamp>``), the new one renamed into place, and only then is the old one
dropped: a failed rename puts the old one back, so at no moment are both gone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import Connection, sql

from harness.config import PgTarget
from harness.errors import RestoreError
from harness.pg.sql import connect, explain_db_error, require_destructive, terminate_sessions
from harness.redact import get_logger

log = get_logger(__name__)

MAX_NAME_BYTES = 63  # PostgreSQL truncates longer identifiers


def derived_name(base: str, suffix: str) -> str:
    """``base`` + ``suffix`` within 63 bytes, shortening ``base`` (never the unique suffix)."""
    room = MAX_NAME_BYTES - len(suffix.encode())
    return base.encode()[:room].decode(errors="ignore") + suffix


def create_scratch(target: PgTarget, name: str) -> None:
    """Create the empty database a restore fills.

    Args:
        target: the server.
        name: the temporary name (see :func:`derived_name`).

    Raises:
        RestoreError: the role may not create databases (the message says what it needs).
        psycopg.Error: any other server error (the caller translates it).

    """
    try:
        with connect(target.with_dbname("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RestoreError(
            f"role {target.user!r} may not create databases "
            f"({explain_db_error(exc, remedy=False)}); a "
            "restore builds the database under a temporary name and renames it into place: "
            "run it as a role with CREATEDB (and CREATEROLE to converge roles) or a superuser",
            phase="create database",
        ) from exc


def database_error(exc: psycopg.Error, phase: str, target: PgTarget) -> RestoreError:
    """A server error during ``phase`` of a restore, as the restore's own error."""
    return RestoreError(
        f"{explain_db_error(exc)} (on {target.display()}); the target was left as it was",
        phase=phase,
    )


def drop_scratch(target: PgTarget, name: str) -> None:
    """Drop a half-restored database; best effort (a failure is logged, not raised)."""
    try:
        with connect(target.with_dbname("postgres"), autocommit=True) as conn:
            terminate_sessions(conn, name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except Exception:  # cleanup after a failure: report the original error, log this one
        log.exception("could not drop the half-restored database %s; drop it by hand", name)


def swap_into_place(target: PgTarget, scratch: str, *, replace: bool) -> None:
    """Give the restored database its name; an old one is renamed aside, then dropped.

    Args:
        target: the server, and the name the restored database takes.
        scratch: the restored database's temporary name.
        replace: a database of that name exists (the plan saw it).

    Raises:
        RestoreError: a rename failed; the old database is back under its name (or, if even
            that failed, the message says where it is).

    """
    name = target.dbname
    with connect(target.with_dbname("postgres"), autocommit=True) as conn:
        terminate_sessions(conn, scratch)
        if not replace:
            _rename(conn, scratch, name)
            return
        require_destructive(target, f"replace database {name}")
        aside = derived_name(name, f"_drill_old_{datetime.now(UTC):%Y%m%d%H%M%S}")
        terminate_sessions(conn, name)
        _rename(conn, name, aside)  # if this fails, nothing has changed
        try:
            _rename(conn, scratch, name)
        except psycopg.Error as exc:
            raise RestoreError(
                f"could not rename the restored database into place ({explain_db_error(exc)}); "
                + _put_back(conn, aside, name),
                phase="swap",
            ) from exc
        # The restored database is in place: dropping the old one can only leave it behind.
        try:
            terminate_sessions(conn, aside)
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(aside)))
        except psycopg.Error as exc:
            log.warning(
                "the previous database is kept as %s (%s); drop it by hand",
                aside,
                explain_db_error(exc),
            )


def _rename(conn: Connection[Any], old: str, new: str) -> None:
    conn.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    )


def _put_back(conn: Connection[Any], aside: str, name: str) -> str:
    """Rename the old database back; say where it is either way."""
    try:
        terminate_sessions(conn, aside)
        _rename(conn, aside, name)
    except psycopg.Error as exc:
        log.error("could not rename %s back to %s: %s", aside, name, explain_db_error(exc))
        return (
            f"the previous database could not be renamed back and is kept, intact, as {aside}: "
            f"rename it with ALTER DATABASE {aside} RENAME TO {name}"
        )
    return f"the previous database is back in place as {name}, unchanged"
