"""``pg_dump`` / ``pg_restore`` argv builders and runners.

Argv carries no connection secrets: host, port, user, database and password travel in the
libpq environment (:meth:`PgTarget.libpq_env`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.config import PgTarget
from harness.errors import ManifestError
from harness.pg.binaries import PgBinaries
from harness.pg.toc import TocEntry
from harness.proc import run
from harness.redact import get_logger

log = get_logger(__name__)

DUMP_TIMEOUT = 6 * 3600.0
# What pg_dump writes for a sequence's position: the name is a string literal holding a
# qualified name, each part double-quoted when it needs to be.
_SETVAL = re.compile(r"SELECT pg_catalog\.setval\((E?)'((?:[^']|'')*)', (-?\d+), (true|false)\);")
_PART = r'"((?:[^"]|"")*)"|([^".]+)'
_QUALIFIED = re.compile(rf"(?:{_PART})\.(?:{_PART})")


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
            The exporting transaction must stay open until pg_dump is done: parallel
            workers (``jobs``) import the snapshot only when the data phase begins.
            Servers from 9.2 on synchronise parallel workers on it.

    """
    argv = [str(binaries.tool("pg_dump")), f"--format={fmt}", f"--file={out}", "--no-password"]
    if fmt == "directory" and jobs > 1:
        argv.append(f"--jobs={jobs}")
    if snapshot is not None:
        argv.append(f"--snapshot={snapshot}")
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

    Args:
        binaries: whose ``pg_dump`` to use.
        target: the database to dump.
        out: the dump file (custom format) or directory (directory format).
        fmt: ``custom`` or ``directory``.
        jobs: parallel jobs (directory format only).
        snapshot: an exported snapshot to dump; its transaction must stay open until this
            returns.

    Raises:
        ToolFailed: pg_dump failed; its stderr tail is in the message.

    """
    result = run(
        pg_dump_argv(binaries, out, fmt=fmt, jobs=jobs, snapshot=snapshot),
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


def dumped_sequences(
    binaries: PgBinaries, dump: Path, entries: list[TocEntry], *, scratch: Path
) -> dict[tuple[str, str], tuple[int, bool]]:
    """The sequence positions ``dump`` holds: ``(schema, name) -> (last_value, is_called)``.

    pg_dump reads each sequence with a plain ``SELECT last_value, is_called``. A sequence is
    not MVCC-protected, so that read sees the position of the moment it runs, not of the
    dump's snapshot: with writers calling ``nextval`` during the dump it is ahead of what a
    read in the snapshot saw. What the archive holds is what a restore sets.

    Args:
        binaries: whose ``pg_restore`` reads the archive.
        dump: the archive (custom file or directory).
        entries: its table of contents (:func:`harness.pg.toc.read_toc`).
        scratch: a directory for the entry list pg_restore reads.

    Raises:
        ToolFailed: pg_restore cannot read the archive.
        ManifestError: a sequence entry is not the ``setval`` call pg_dump writes.

    """
    chosen = [e for e in entries if e.kind == "SEQUENCE SET"]
    if not chosen:
        return {}
    listing = scratch / "sequence-set.list"
    listing.write_text("\n".join(e.line for e in chosen) + "\n")
    try:
        text = run(
            [binaries.tool("pg_restore"), "--use-list", listing, "--file=-", dump], timeout=600
        ).stdout
    finally:
        listing.unlink(missing_ok=True)
    found: dict[tuple[str, str], tuple[int, bool]] = {}
    for escaped, literal, value, called in _SETVAL.findall(text):
        name = literal.replace("''", "'")
        if escaped:
            name = name.replace("\\\\", "\\")
        found[_split_qualified(name)] = (int(value), called == "true")
    if len(found) != len(chosen):
        raise ManifestError(
            f"{dump} holds {len(chosen)} sequence positions but only {len(found)} could be "
            "read; the archive was not written by a pg_dump this harness knows"
        )
    return found


def _split_qualified(name: str) -> tuple[str, str]:
    """``schema.name`` as pg_dump quotes it (``"My Schema"."a""b"``) into its two parts."""
    match = _QUALIFIED.fullmatch(name)
    if match is None:
        raise ManifestError(f"cannot read the sequence name {name!r} in the dump")
    quoted_schema, schema, quoted_name, bare_name = match.groups()
    return (
        schema if quoted_schema is None else quoted_schema.replace('""', '"'),
        bare_name if quoted_name is None else quoted_name.replace('""', '"'),
    )
