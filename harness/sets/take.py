"""Take a backup set of one database: globals, dump, per-section SQL, manifest last.

Everything the manifest states about the data (row counts, sequence values) is read in the
very snapshot the dump uses: the harness opens a REPEATABLE READ transaction, exports its
snapshot and hands it to ``pg_dump --snapshot``, so counts and dump cannot disagree even while
the application keeps writing.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import Connection, sql

from harness.config import PgTarget
from harness.errors import BackupError, ConnectError, DrillError
from harness.pg.binaries import PgBinaries, client_tools_for
from harness.pg.dump import dump_database
from harness.pg.globals import read_globals, render_sql
from harness.pg.sql import connect, count_in, sequence_positions, user_relations
from harness.pg.toc import STEPS, read_toc, write_section_sql
from harness.redact import get_logger
from harness.sets.manifest import (
    Location,
    Manifest,
    SequenceState,
    TableRows,
    describe_artifacts,
    discard,
    publish,
)
from harness.verify.compare import Fingerprint, read_fingerprint

log = get_logger(__name__)

FORMATS = ("custom", "directory")


@dataclass(frozen=True)
class BackupResult:
    """A published backup set."""

    location: str
    manifest: Manifest
    seconds: float
    fingerprint: Fingerprint | None = None  # of the data as dumped (same snapshot)


def take_backup(
    target: PgTarget,
    location: Location,
    *,
    binaries: PgBinaries | None = None,
    fmt: str = "custom",
    jobs: int = 1,
    section_sql: bool = True,
    with_fingerprint: bool = True,
    workdir: Path | None = None,
) -> BackupResult:
    """Back up ``target``'s database to ``location``.

    Args:
        target: the database to back up (a role with read access to every table and
            BYPASSRLS, or a superuser).
        location: where the set goes; it must not hold a set already.
        binaries: client tools; default: those matching the server's major version.
        fmt: ``custom`` (one file) or ``directory`` (parallel dump with ``jobs``).
        jobs: parallel dump jobs (directory format).
        section_sql: also write per-section human-readable SQL.
        with_fingerprint: also store the data and catalog fingerprint, read in the dump's
            snapshot, so a restore can be verified against it.
        workdir: where to stage the set (default: beside a local destination, else /tmp).

    Raises:
        BackupError: a step failed; ``phase`` names it. Nothing is published then.
        ConnectError: the server cannot be reached.

    """
    if fmt not in FORMATS:
        raise BackupError(f"unknown dump format {fmt!r}; use custom or directory", phase="options")
    started = time.monotonic()
    stage_parent = workdir or (location.local.parent if location.local else None)
    if stage_parent is not None:
        stage_parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=stage_parent))
    phase = "snapshot"
    try:
        with connect(target) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot_id = _scalar(conn, "SELECT pg_export_snapshot()")
            facts = _source_facts(conn)
            tools = binaries or client_tools_for(facts.major)
            phase = "preflight"
            _refuse_rls_blockers(conn)
            (staging / "db").mkdir()
            dump_path = (
                staging
                / "db"
                / (f"{target.dbname}.dump" if fmt == "custom" else f"{target.dbname}.dir")
            )
            # pg_dump works in its own process on the exported snapshot while this
            # connection counts rows in the same snapshot: the counts cost no extra time.
            with ThreadPoolExecutor(max_workers=1) as pool:
                dumping = pool.submit(
                    dump_database,
                    tools,
                    target,
                    dump_path,
                    fmt=fmt,
                    jobs=jobs,
                    snapshot=snapshot_id,
                )
                try:
                    phase = "counts"
                    tables, sequences = _contents(conn)
                    phase = "globals"
                    snapshot = read_globals(conn)
                    phase = "fingerprint"
                    fingerprint = read_fingerprint(conn) if with_fingerprint else None
                finally:
                    phase = "dump"
                    result = dumping.result()
            (staging / "globals").mkdir()
            (staging / "globals" / "roles.json").write_text(snapshot.to_json())
            (staging / "globals" / "roles.sql").write_text(render_sql(snapshot))
            conn.rollback()
        files = {
            "globals/roles.json": "globals",
            "globals/roles.sql": "globals-sql",
            dump_path.relative_to(staging).as_posix(): f"dump-{fmt}",
        }
        if fingerprint is not None:
            (staging / "fingerprint.json").write_text(fingerprint.to_json())
            files["fingerprint.json"] = "fingerprint"
        if section_sql:
            phase = "section sql"
            files.update(_write_sections(tools, dump_path, staging))
        phase = "manifest"
        manifest = Manifest(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            dbname=target.dbname,
            source_server_version=facts.version,
            source_major=facts.major,
            system_identifier=facts.system_identifier,
            wal_lsn=facts.lsn,
            dump_format=fmt,
            tools={"pg_dump": result.tool, "harness": _harness_version()},
            artifacts=describe_artifacts(staging, files),
            tables=tables,
            sequences=sequences,
        )
        phase = "publish"
        publish(staging, manifest, location)
    except (BackupError, ConnectError):
        raise  # already says what failed; a refused login is bad input, not a failed step
    except DrillError as exc:
        raise BackupError(str(exc), phase=phase) from exc
    finally:
        discard(staging)  # after a local publish it was renamed away; S3 sets were uploaded
    seconds = time.monotonic() - started
    log.info(
        "backup of %s published to %s in %.2f s (%d tables, %d artifacts)",
        target.display(),
        location.uri,
        seconds,
        len(tables),
        len(manifest.artifacts),
    )
    return BackupResult(
        location=location.uri, manifest=manifest, seconds=seconds, fingerprint=fingerprint
    )


def _scalar(conn: Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class _Source:
    version: str
    major: int
    system_identifier: str | None
    lsn: str | None


def _source_facts(conn: Connection[Any]) -> _Source:
    optional: dict[str, str | None] = {}
    # Both may be refused to a non-superuser backup role: record what can be read.
    for name, query in (
        ("system_identifier", "SELECT system_identifier::text FROM pg_control_system()"),
        ("lsn", "SELECT pg_current_wal_lsn()::text"),
    ):
        conn.execute("SAVEPOINT fact")
        try:
            optional[name] = _scalar(conn, query)
            conn.execute("RELEASE SAVEPOINT fact")
        except Exception:  # a permission error on an optional fact; record it as unknown
            conn.execute("ROLLBACK TO SAVEPOINT fact")
            optional[name] = None
    return _Source(
        version=str(_scalar(conn, "SHOW server_version")).split()[0],
        major=conn.info.server_version // 10000,
        system_identifier=optional["system_identifier"],
        lsn=optional["lsn"],
    )


def _refuse_rls_blockers(conn: Connection[Any]) -> None:
    row = conn.execute(
        "SELECT rolsuper, rolbypassrls, current_user FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row is None or row[0] or row[1]:
        return
    blocked = conn.execute(
        "SELECT n.nspname || '.' || c.relname, c.relforcerowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relrowsecurity "
        "AND c.relkind IN ('r', 'p') AND (c.relforcerowsecurity "
        "OR pg_get_userbyid(c.relowner) <> current_user) ORDER BY 1"
    ).fetchall()
    if blocked:
        names = ", ".join(f"{t}{' (FORCE)' if forced else ''}" for t, forced in blocked)
        raise BackupError(
            f"role {row[2]!r} has neither SUPERUSER nor BYPASSRLS, so row level security "
            f"would hide rows from the dump (pg_dump refuses such tables): {names}. Back up "
            f"as a role with BYPASSRLS and pg_read_all_data (as Supabase's backup role has)",
            phase="preflight",
        )


def _contents(conn: Connection[Any]) -> tuple[tuple[TableRows, ...], tuple[SequenceState, ...]]:
    # Error instead of silently counting only the rows a policy shows.
    conn.execute("SET LOCAL row_security = off")
    tables = []
    for schema, name in user_relations(conn, "r"):
        rows = count_in(conn, sql.Identifier(schema, name))
        tables.append(TableRows(schema=schema, name=name, rows=rows))
    sequences = [
        SequenceState(schema=schema, name=name, last_value=value, is_called=called)
        for schema, name, value, called in sequence_positions(conn)
    ]
    return tuple(tables), tuple(sequences)


def _write_sections(tools: PgBinaries, dump: Path, staging: Path) -> dict[str, str]:
    entries = read_toc(tools, dump)
    (staging / "sql").mkdir()
    files = {}
    for index, (step, _) in enumerate(STEPS, start=1):
        if step in ("roles", "data"):
            continue  # roles live in globals/, data in the dump
        out = staging / "sql" / f"{index:02d}-{step}.sql"
        if write_section_sql(tools, dump, entries, step=step, out=out):
            files[out.relative_to(staging).as_posix()] = "section-sql"
    return files


def _harness_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("recovery-drill-harness")
    except PackageNotFoundError:
        return "unknown"
