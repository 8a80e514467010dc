"""Canary writes: committed, timestamped rows that make the data-loss window measurable.

Each row has a sequence number (``id``, in commit order for a single writer) and the server's
clock at the time of the write. The newest row before a disaster and the newest row after
the recovery bound the data lost; :mod:`harness.drill.writer` commits them continuously and
records when each commit started and returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection

from harness.config import PgTarget
from harness.errors import ServerError
from harness.pg.sql import connect


@dataclass(frozen=True)
class CanaryWrite:
    """One committed canary row."""

    seq: int
    written_at: datetime

    def describe(self) -> str:
        """``#seq at <timestamp>``, for evidence."""
        return f"#{self.seq} at {self.written_at.isoformat(timespec='milliseconds')}"


def install(target: PgTarget) -> None:
    """Create ``drill.canary`` (idempotent); it is backed up with everything else."""
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS drill")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS drill.canary (id bigserial PRIMARY KEY, "
            "written_at timestamptz NOT NULL DEFAULT clock_timestamp(), note text)"
        )


def write_on(conn: Connection[Any], note: str = "") -> CanaryWrite:
    """Commit one canary row on an open autocommit connection; return what was committed.

    Raises:
        ServerError: the server answered the INSERT with no row.

    """
    row = conn.execute(
        "INSERT INTO drill.canary (note) VALUES (%s) RETURNING id, written_at", (note,)
    ).fetchone()
    if row is None:
        raise ServerError("INSERT INTO drill.canary ... RETURNING returned no row")
    return CanaryWrite(seq=int(row[0]), written_at=row[1])


def write(target: PgTarget, note: str = "") -> datetime:
    """Commit one canary row; return the server's timestamp of it."""
    with connect(target, autocommit=True) as conn:
        return write_on(conn, note).written_at


def newest_write(target: PgTarget) -> CanaryWrite | None:
    """The newest canary row present, or None when the table is empty or missing."""
    with connect(target) as conn:
        if conn.execute("SELECT to_regclass('drill.canary')").fetchone() == (None,):
            return None
        row = conn.execute(
            "SELECT id, written_at FROM drill.canary ORDER BY written_at DESC, id DESC LIMIT 1"
        ).fetchone()
    return CanaryWrite(seq=int(row[0]), written_at=row[1]) if row else None


def present_seqs(target: PgTarget) -> set[int]:
    """Sequence numbers of the canary rows in ``target`` (empty when the table is missing)."""
    with connect(target) as conn:
        if conn.execute("SELECT to_regclass('drill.canary')").fetchone() == (None,):
            return set()
        return {int(row[0]) for row in conn.execute("SELECT id FROM drill.canary")}


def newest(target: PgTarget) -> datetime | None:
    """The newest canary timestamp present, or None when the table is empty or missing."""
    found = newest_write(target)
    return found.written_at if found else None
