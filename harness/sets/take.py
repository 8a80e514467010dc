"""Take a backup set of one database: globals, dump, per-section SQL, manifest last.

Everything the manifest states about the data (row counts, roles, the fingerprint) is read in
the very snapshot the dump uses: the harness opens a REPEATABLE READ transaction, exports its
snapshot, hands it to ``pg_dump --snapshot`` and keeps the transaction open until the dump
is done, so counts and dump cannot disagree even while the application keeps writing.

Sequence positions are the one thing no snapshot holds still (``nextval`` is not
transactional; pg_dump reads each sequence's current position while it runs). The set
records the positions the dump holds, read back from the archive: at or ahead of every key
in the dumped rows, and exactly what a restore sets.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import Connection, sql

from harness.config import PgTarget
from harness.errors import BackupError, ConnectError, DrillError
from harness.pg.binaries import PgBinaries, client_tools_for
from harness.pg.dump import dump_database, dumped_sequences
from harness.pg.globals import read_globals, render_sql
from harness.pg.sql import connect, count_in, sequence_positions, user_relations
from harness.pg.toc import STEPS, TocEntry, read_toc, write_section_sql
from harness.redact import get_logger
from harness.sets.location import Location
from harness.sets.manifest import Manifest, SequenceState, TableRows, describe_artifacts
from harness.sets.publish import discard, publish
from harness.verify.catalog import CatalogFingerprint
from harness.verify.compare import Fingerprint, counted_rows, read_fingerprint

log = get_logger(__name__)

FORMATS = ("custom", "directory")
_SECTION_JOBS = 4  # per-section SQL files written at once (each a short pg_restore)


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
            _refuse_unreadable_large_objects(conn)
            (staging / "db").mkdir()
            dump_path = (
                staging
                / "db"
                / (f"{target.dbname}.dump" if fmt == "custom" else f"{target.dbname}.dir")
            )
            # pg_dump works in its own process on the exported snapshot while this
            # connection reads the fingerprint and counts rows in the same snapshot.
            # The transaction stays open until pg_dump has finished: the dump (and, in
            # directory format, each parallel worker when the data phase starts) imports
            # the snapshot, which lives only as long as the transaction that exported it.
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
                # Should a read fail, leaving the pool still waits for pg_dump with the
                # transaction open, and the error reported is the read's, not the dump's.
                phase = "globals"
                snapshot = read_globals(conn)
                phase = "fingerprint"
                fingerprint = read_fingerprint(conn) if with_fingerprint else None
                phase = "counts"
                tables, sequences = _contents(conn, fingerprint)
                phase = "dump"
                result = dumping.result()
            conn.rollback()
        phase = "sequences"
        entries = read_toc(tools, dump_path)
        sequences, fingerprint = _as_dumped(
            sequences, fingerprint, dumped_sequences(tools, dump_path, entries, scratch=staging)
        )
        (staging / "globals").mkdir()
        (staging / "globals" / "roles.json").write_text(snapshot.to_json())
        (staging / "globals" / "roles.sql").write_text(render_sql(snapshot))
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
            files.update(_write_sections(tools, dump_path, entries, staging))
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


def _refuse_unreadable_large_objects(conn: Connection[Any]) -> None:
    # pg_read_all_data does not cover large objects: pg_dump would stop at the first one the
    # role cannot read, after minutes of work. Name them before anything starts.
    row = conn.execute(
        "SELECT rolsuper, current_user, current_setting('lo_compat_privileges')::bool "
        "FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row is None or row[0] or row[2]:
        return
    unreadable = conn.execute(
        "SELECT count(*), min(m.oid::text::bigint) FROM pg_largeobject_metadata m "
        "WHERE NOT pg_has_role(current_user, m.lomowner, 'USAGE') AND NOT EXISTS ("
        "  SELECT FROM aclexplode(m.lomacl) a WHERE a.privilege_type = 'SELECT'"
        "  AND (a.grantee = 0 OR pg_has_role(current_user, a.grantee, 'USAGE')))"
    ).fetchone()
    if unreadable is not None and unreadable[0]:
        raise BackupError(
            f"role {row[1]!r} cannot read {unreadable[0]} large object(s) (the first is oid "
            f"{unreadable[1]}), and pg_dump would fail on them: pg_read_all_data does not "
            "cover large objects. GRANT SELECT ON LARGE OBJECT ... to the backup role, or "
            "back up as a superuser",
            phase="preflight",
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


def _contents(
    conn: Connection[Any], fingerprint: Fingerprint | None
) -> tuple[tuple[TableRows, ...], tuple[SequenceState, ...]]:
    # Error instead of silently counting only the rows a policy shows.
    conn.execute("SET LOCAL row_security = off")
    # The fingerprint, read in this snapshot, already counted each table's own rows: for a
    # table without inheritance children that is its count, and a second scan is saved.
    known = counted_rows(conn, fingerprint) if fingerprint is not None else {}
    tables = []
    for schema, name in user_relations(conn, "r"):
        rows = known.get((schema, name))
        if rows is None:
            rows = count_in(conn, sql.Identifier(schema, name))
        tables.append(TableRows(schema=schema, name=name, rows=rows))
    sequences = [
        SequenceState(schema=schema, name=name, last_value=value, is_called=called)
        for schema, name, value, called in sequence_positions(conn)
    ]
    return tuple(tables), tuple(sequences)


def _as_dumped(
    sequences: tuple[SequenceState, ...],
    fingerprint: Fingerprint | None,
    dumped: dict[tuple[str, str], tuple[int, bool]],
) -> tuple[tuple[SequenceState, ...], Fingerprint | None]:
    """Sequence positions as the dump holds them, in the manifest and in the fingerprint.

    Rows are read in the snapshot; sequence positions are not (``nextval`` is not
    transactional, and pg_dump reads each sequence's current position). With writers
    calling ``nextval`` during the backup, pg_dump's value is ahead of the one read here.
    That is not data loss, and it is what a restore sets: recording it lets the restore
    check stay exact, so a restored sequence anywhere else (behind in particular) fails.
    """
    missing = [f"{s.schema}.{s.name}" for s in sequences if (s.schema, s.name) not in dumped]
    if missing:
        log.warning("the dump holds no position for sequence(s) %s", ", ".join(missing))
    as_dumped = tuple(
        replace(s, last_value=dumped[key][0], is_called=dumped[key][1])
        if (key := (s.schema, s.name)) in dumped
        else s
        for s in sequences
    )
    if fingerprint is None:
        return as_dumped, None
    positions = {f"{s.schema}.{s.name}": (s.last_value, s.is_called) for s in as_dumped}
    rows = []
    for name, text in fingerprint.catalog.sections.get("sequence_values", ()):
        # The catalog fingerprint writes "<definition> | last_value=<v> is_called=<b>".
        definition, separator, _ = text.rpartition(" | last_value=")
        if not separator:
            raise BackupError(
                f"cannot read the position of sequence {name} in the fingerprint "
                f"({text!r}); the fingerprint format changed",
                phase="sequences",
            )
        if name in positions:
            value, called = positions[name]
            text = f"{definition} | last_value={value} is_called={called}"
        rows.append((name, text))
    sections = {**fingerprint.catalog.sections, "sequence_values": tuple(rows)}
    return as_dumped, replace(fingerprint, catalog=CatalogFingerprint(sections=sections))


def _write_sections(
    tools: PgBinaries, dump: Path, entries: list[TocEntry], staging: Path
) -> dict[str, str]:
    (staging / "sql").mkdir()
    outs = {
        step: staging / "sql" / f"{index:02d}-{step}.sql"
        for index, (step, _) in enumerate(STEPS, start=1)
        if step not in ("roles", "data")  # roles live in globals/, data in the dump
    }
    # Each file is one short pg_restore reading the finished dump: a few at once, not a
    # dozen process starts in a row.
    with ThreadPoolExecutor(max_workers=_SECTION_JOBS) as pool:
        wrote = dict(
            zip(
                outs,
                pool.map(
                    lambda step: write_section_sql(tools, dump, entries, step=step, out=outs[step]),
                    outs,
                ),
                strict=True,
            )
        )
    return {
        out.relative_to(staging).as_posix(): "section-sql"
        for step, out in outs.items()
        if wrote[step]
    }


def _harness_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("recovery-drill-harness")
    except PackageNotFoundError:
        return "unknown"
