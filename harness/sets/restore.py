"""Ordered restore of a backup set into a server (P2), and its dry run.

The set is checked first (every hash) and nothing touches the target until that passes. The
plan comes next, read-only: the server's version, whether the database exists and what it
holds, and every change to the server's roles (a diff against the backup's snapshot). Every
precondition is decided on that plan before any work: a non-empty database without
``clean``, a newer source version, and, on a target that may not take destructive steps,
replacing an existing database or changing roles that already exist. The dry run stops there.

The database is then restored under a temporary name: roles converged (exactly the planned
changes), one ``pg_restore`` run (with ``--jobs``),
row counts and sequence values compared with the manifest. Only a restore that passed all of
that is put in place: an existing database is first renamed aside, the new one renamed into
its name, and only then is the old one dropped (a failed rename puts the old one back). A
failure at any point drops the temporary database and undoes the role changes, so the target
is left as it was.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from harness.config import PgTarget
from harness.errors import DrillError, RestoreError, VerificationFailed
from harness.pg.binaries import PgBinaries, client_tools_for, find_binaries
from harness.pg.dump import pg_restore_argv
from harness.pg.roles import RoleChange, apply_database_settings, apply_roles, undo_roles
from harness.pg.sql import connect, count_in
from harness.proc import run
from harness.redact import get_logger
from harness.sets.check import require_good_set
from harness.sets.location import Location
from harness.sets.manifest import Manifest
from harness.sets.restore_plan import PlanStep as PlanStep
from harness.sets.restore_plan import RestorePlan as RestorePlan
from harness.sets.restore_plan import check_preconditions, make_plan
from harness.sets.swap import (
    create_scratch,
    database_error,
    derived_name,
    drop_scratch,
    swap_into_place,
)
from harness.verify.checks import CheckResult, failures, render
from harness.verify.compare import Fingerprint, compare, counted_rows, take_fingerprint

log = get_logger(__name__)

Progress = Callable[[str], None]
RESTORE_TIMEOUT = 12 * 3600.0
# Phases whose failure means the input was wrong (exit 2), not that the restore failed.
INPUT_PHASES = frozenset({"target", "version"})


@dataclass(frozen=True)
class RestoreResult:
    """A finished (or planned-only) restore."""

    plan: RestorePlan
    checks: tuple[CheckResult, ...]
    role_actions: tuple[str, ...]
    seconds: float
    dry_run: bool


def restore_set(
    location: Location,
    target: PgTarget,
    *,
    workdir: Path,
    jobs: int = 1,
    clean: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore the set at ``location`` into ``target.dbname`` on ``target``'s server.

    Args:
        location: the backup set.
        target: the server and database name to restore into (created if absent).
        workdir: scratch space (S3 sets are downloaded here).
        jobs: parallel ``pg_restore`` jobs for data and post-data.
        clean: replace a non-empty existing database (a destructive step).
        dry_run: only check the set, print the plan and decide the preconditions; change
            nothing.
        progress: called with one line per step (the CLI prints them to stderr).

    Raises:
        RestoreError: a precondition failed (``phase`` in :data:`INPUT_PHASES`) or a step
            failed, database errors included; the target is as it was in both cases (role
            changes are undone as far as possible, and what could not be is logged).
        UnsafeTargetError: the restore would replace a database or change existing roles on
            a target that may not take destructive steps; nothing was changed.
        VerificationFailed: the set failed its checks, or the restored database does not
            match the manifest.

    """
    say = progress or (lambda line: log.info("%s", line))
    started = time.monotonic()
    say(f"checking {location.uri}")
    checked = require_good_set(location, workdir=workdir)
    manifest = checked.manifest
    try:
        tools = _restore_tools(manifest, target)
        plan, snapshot = make_plan(checked, manifest, target, tools)
    except psycopg.Error as exc:
        raise database_error(exc, "plan", target) from exc
    say(plan.render())
    check_preconditions(plan, target, clean=clean)
    if dry_run:
        return RestoreResult(
            plan=plan,
            checks=checked.results,
            role_actions=(),
            seconds=time.monotonic() - started,
            dry_run=True,
        )

    scratch = derived_name(target.dbname, f"__restoring_{secrets.token_hex(4)}")
    staged = target.with_dbname(scratch)
    server = target.with_dbname("postgres")
    phase = "create database"
    created, applied = False, tuple[RoleChange, ...]()
    try:
        create_scratch(target, scratch)
        created = True
        phase = "roles"
        say("step roles: converging roles, attributes, memberships and settings")
        applied = apply_roles(server, snapshot, plan.role_changes)
        dump = checked.root / manifest.dump_path()
        # One pg_restore for every section, as one would run it by hand: with --jobs, a
        # table's indexes build while other tables still load. Its errors name the entry
        # that failed (and so whether it was the schema, the data or an index).
        phase = "pg_restore"
        say(
            "step pg_restore: schema, table data, sequence values, indexes, constraints, "
            "triggers, RLS, grants"
        )
        _pg_restore(tools, staged, dump, jobs=jobs)
        # Owner, settings, grants and comment belong to the database's oid: applied now,
        # they survive the rename and are part of what is verified.
        phase = "database settings"
        actions = apply_database_settings(staged, snapshot, scratch)
        phase = "verify"
        fingerprinted: tuple[CheckResult, ...] = ()
        counted: Fingerprint | None = None
        if "fingerprint" in {a.kind for a in manifest.artifacts}:
            say("verifying data and catalog against the backup's fingerprint")
            fingerprinted, counted = _verify_fingerprint(checked.root, manifest, staged)
        say("verifying row counts and sequence values against the manifest")
        # Nobody else writes to the scratch database: the fingerprint's counts still hold.
        results = (
            verify_against_manifest(
                staged,
                manifest,
                counted=counted,
                data_matches=counted is not None and not failures(fingerprinted),
            )
            + fingerprinted
        )
        bad = failures(results)
        if bad:
            raise VerificationFailed(
                f"the restored database does not match the backup:\n{render(bad)}", checks=results
            )
        phase = "swap"
        say(f"putting the restored database in place as {target.dbname}")
        swap_into_place(target, scratch, replace=plan.target_exists)
    except BaseException as exc:
        # Undo in reverse: the scratch database first (roles created here may own its
        # objects), then the role changes.
        if created:
            drop_scratch(target, scratch)
        if applied:
            say(f"undoing {len(applied)} role changes")
            for problem in undo_roles(server, applied):
                exc.add_note(f"role change not undone: {problem}")
        if isinstance(exc, psycopg.Error):
            raise database_error(exc, phase, target) from exc
        raise
    seconds = time.monotonic() - started
    say(f"restored {target.display()} in {seconds:.1f} s")
    return RestoreResult(
        plan=plan,
        checks=checked.results + tuple(results),
        role_actions=tuple(c.describe() for c in applied) + tuple(actions),
        seconds=seconds,
        dry_run=False,
    )


def _restore_tools(manifest: Manifest, target: PgTarget) -> PgBinaries:
    """pg_restore of the target's version: it reads the archive and writes SQL the target takes.

    Raises:
        RestoreError: the set comes from a newer major version than the target runs.

    """
    with connect(target.with_dbname("postgres")) as conn:
        target_major = conn.info.server_version // 10000
    if manifest.source_major > target_major:
        raise RestoreError(
            f"the set was taken from PostgreSQL {manifest.source_server_version} but "
            f"{target.display()} runs PostgreSQL {target_major}; restore into a server of "
            f"version {manifest.source_major} or newer",
            phase="version",
        )
    try:
        return find_binaries(major=target_major, need="client")
    except DrillError:
        tools = client_tools_for(manifest.source_major)
        log.warning(
            "no PostgreSQL %d client tools here; restoring with %s", target_major, tools.describe()
        )
        return tools


def _pg_restore(tools: PgBinaries, staged: PgTarget, dump: Path, *, jobs: int) -> None:
    argv = pg_restore_argv(tools, dump, dbname=staged.dbname, jobs=jobs)
    try:
        run(argv, timeout=RESTORE_TIMEOUT, env=staged.libpq_env())
    except DrillError as exc:
        raise RestoreError(str(exc), phase="pg_restore") from exc


def _verify_fingerprint(
    root: Path, manifest: Manifest, staged: PgTarget
) -> tuple[tuple[CheckResult, ...], Fingerprint]:
    """The restored database compared with the set's fingerprint, and its own fingerprint."""
    expected = Fingerprint.from_json((root / manifest.artifact("fingerprint").path).read_text())
    # Digests computed the way the set's fingerprint computed them (older sets, older hash).
    actual = take_fingerprint(staged, like=expected)
    same_major = expected.server_version.split(".")[0] == actual.server_version.split(".")[0]
    comparison = compare(expected, actual, catalog=same_major)
    checks = comparison.checks
    if not same_major:
        checks += (
            CheckResult(
                "catalog",
                ok=False,
                critical=False,
                detail=f"not compared: the backup is from PostgreSQL {expected.server_version}, "
                f"this server runs {actual.server_version} (definitions deparse differently)",
            ),
        )
    return checks, actual


def verify_against_manifest(
    target: PgTarget,
    manifest: Manifest,
    *,
    counted: Fingerprint | None = None,
    data_matches: bool = False,
) -> tuple[CheckResult, ...]:
    """Compare exact row counts and sequence positions of ``target`` with the manifest.

    A sequence that serves a column (serial or identity) must also be ahead of the keys the
    column holds: otherwise the restored application's next insert collides. When the data
    matches the backup's fingerprint and every sequence its recorded position, a sequence
    behind its keys was so in the source already (rows inserted with explicit keys, and no
    ``setval``): the restore reproduced it faithfully, and it is reported as a warning about
    the source, not as a failed restore.

    Args:
        target: the restored database.
        manifest: the set's manifest.
        counted: a fingerprint of ``target`` as it is now: the tables it counted exactly are
            not counted again.
        data_matches: the data of ``target`` matched the backup's fingerprint.

    """
    results = []
    with connect(target) as conn:
        conn.execute("SET row_security = off")
        known = counted_rows(conn, counted) if counted is not None else {}
        wrong = []
        for t in manifest.tables:
            have = known.get((t.schema, t.name))
            if have is None:
                have = count_in(conn, sql.Identifier(t.schema, t.name))
            if have != t.rows:
                wrong.append(f"{t.qualified}: {have} rows, backup had {t.rows}")
        results.append(
            CheckResult(
                "row counts",
                ok=not wrong,
                critical=True,
                detail="; ".join(wrong)
                or f"all {len(manifest.tables)} tables match "
                f"({sum(t.rows for t in manifest.tables)} rows)",
            )
        )
        moved = []
        for s in manifest.sequences:
            row = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(
                    sql.Identifier(s.schema, s.name)
                )
            ).fetchone()
            if row is None or (int(row[0]), bool(row[1])) != (s.last_value, s.is_called):
                moved.append(
                    f"{s.schema}.{s.name}: {row}, backup had ({s.last_value}, {s.is_called})"
                )
        results.append(
            CheckResult(
                "sequences",
                ok=not moved,
                critical=True,
                detail="; ".join(moved) or f"all {len(manifest.sequences)} sequences match",
            )
        )
        # A sequence must also be ahead of the keys its column holds, or the restored
        # application's next insert collides. The manifest records the position the dump
        # holds (read after the snapshot, so ahead of its rows), and this holds for it.
        recorded = {(s.schema, s.name) for s in manifest.sequences}
        owned = [
            row
            for row in conn.execute(
                "SELECT sn.nspname, s.relname, tn.nspname, t.relname, a.attname, q.seqincrement "
                "FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
                "JOIN pg_namespace sn ON sn.oid = s.relnamespace "
                "JOIN pg_class t ON t.oid = d.refobjid "
                "JOIN pg_namespace tn ON tn.oid = t.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
                "JOIN pg_sequence q ON q.seqrelid = s.oid "
                "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
                "AND d.deptype IN ('a', 'i') AND a.atttypid IN ('int2'::regtype, "
                "'int4'::regtype, 'int8'::regtype) ORDER BY 1, 2"
            ).fetchall()
            if (row[0], row[1]) in recorded
        ]
        behind = []
        for seq_schema, seq, schema, table, column, step in owned:
            position = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(
                    sql.Identifier(seq_schema, seq)
                )
            ).fetchone()
            edge = conn.execute(
                sql.SQL("SELECT {}({}) FROM {}").format(
                    sql.SQL("max" if step > 0 else "min"),
                    sql.Identifier(column),
                    sql.Identifier(schema, table),
                )
            ).fetchone()
            if position is None or edge is None or edge[0] is None:
                continue  # an empty table: any position is ahead
            following = int(position[0]) + (int(step) if position[1] else 0)
            if (following - int(edge[0])) * (1 if step > 0 else -1) <= 0:
                behind.append(
                    f"{seq_schema}.{seq} would hand out {following} next, but "
                    f"{schema}.{table}.{column} already holds {edge[0]}"
                )
        # The data and every sequence are the backup's: the source was like this.
        inherited = bool(behind) and data_matches and not moved
        detail = "; ".join(behind) or f"all {len(owned)} column sequences are ahead of their keys"
        if inherited:
            detail = (
                f"the backed-up database was already like this, and the restore reproduced "
                f"it: {detail}; its next insert will collide too (fix it there with setval)"
            )
        results.append(
            CheckResult(
                "sequences ahead of keys",
                ok=not behind,
                critical=not inherited,
                detail=detail,
            )
        )
    return tuple(results)
