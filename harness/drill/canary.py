"""Canary writes: committed, timestamped rows that make the data-loss window measurable."""

from __future__ import annotations

from datetime import datetime

from harness.config import PgTarget
from harness.pg.sql import connect


def install(target: PgTarget) -> None:
    """Create ``drill.canary`` (idempotent); it is backed up with everything else."""
    with connect(target, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS drill")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS drill.canary (id bigserial PRIMARY KEY, "
            "written_at timestamptz NOT NULL DEFAULT clock_timestamp(), note text)"
        )


def write(target: PgTarget, note: str = "") -> datetime:
    """Commit one canary row; return the server's timestamp of it."""
    with connect(target, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO drill.canary (note) VALUES (%s) RETURNING written_at", (note,)
        ).fetchone()
    if row is None:
        raise RuntimeError("INSERT ... RETURNING returned nothing")
    return row[0]  # type: ignore[no-any-return]


def newest(target: PgTarget) -> datetime | None:
    """The newest canary present, or None when the table is empty or missing."""
    with connect(target) as conn:
        if conn.execute("SELECT to_regclass('drill.canary')").fetchone() == (None,):
            return None
        row = conn.execute("SELECT max(written_at) FROM drill.canary").fetchone()
    return row[0] if row else None
