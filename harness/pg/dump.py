"""``pg_dump`` / ``pg_restore`` argv builders and runners.

Argv carries no connection secrets: host, port, user, database and password travel in the
libpq environment (:meth:`PgTarget.libpq_env`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.config import PgTarget
from harness.pg.binaries import PgBinaries
from harness.proc import run
from harness.redact import get_logger

log = get_logger(__name__)

DUMP_TIMEOUT = 6 * 3600.0


@dataclass(frozen=True)
class DumpResult:
    """One finished dump."""

    path: Path
    size: int
    seconds: float
    tool: str


def pg_dump_argv(
    binaries: PgBinaries,
    out: Path,
    *,
    fmt: str = "custom",
    jobs: int = 1,
    snapshot: str | None = None,
) -> list[str]:
    """Build the ``pg_dump`` command for a whole database.

    Args:
        binaries: whose ``pg_dump`` to use.
        out: the dump file (custom format) or directory (directory format).
        fmt: ``custom`` or ``directory``.
        jobs: parallel jobs (directory format only).
        snapshot: an exported snapshot to dump (so the caller's reads match the dump).

    """
    argv = [str(binaries.tool("pg_dump")), f"--format={fmt}", f"--file={out}", "--no-password"]
    if fmt == "directory" and jobs > 1:
        argv.append(f"--jobs={jobs}")
    return argv


def pg_restore_argv(binaries: PgBinaries, dump: Path, *, dbname: str, jobs: int = 1) -> list[str]:
    """Build the ``pg_restore`` command into an existing database (stop at the first error)."""
    return [
        str(binaries.tool("pg_restore")),
        "--exit-on-error",
        "--no-password",
        f"--jobs={max(1, jobs)}",
        f"--dbname={dbname}",
        str(dump),
    ]


def dump_database(
    binaries: PgBinaries,
    target: PgTarget,
    out: Path,
    *,
    fmt: str = "custom",
    jobs: int = 1,
    snapshot: str | None = None,
) -> DumpResult:
    """Dump ``target``'s database to ``out``.

    Raises:
        ToolFailed: pg_dump failed; its stderr tail is in the message.

    """
    result = run(
        pg_dump_argv(binaries, out, fmt=fmt, jobs=jobs),
        timeout=DUMP_TIMEOUT,
        env=target.libpq_env(),
    )
    size = (
        sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        if out.is_dir()
        else out.stat().st_size
    )
    log.info("dumped %s to %s (%d bytes, %.2f s)", target.display(), out, size, result.seconds)
    return DumpResult(
        path=out, size=size, seconds=result.seconds, tool=f"pg_dump {binaries.version}"
    )


def restore_dump(binaries: PgBinaries, target: PgTarget, dump: Path, *, jobs: int = 1) -> float:
    """Restore ``dump`` into ``target``'s (existing) database; return the seconds taken.

    Raises:
        ToolFailed: pg_restore failed; its stderr tail is in the message.

    """
    result = run(
        pg_restore_argv(binaries, dump, dbname=target.dbname, jobs=jobs),
        timeout=DUMP_TIMEOUT,
        env=target.libpq_env(),
    )
    log.info("restored %s into %s in %.2f s", dump, target.display(), result.seconds)
    return result.seconds
