"""Ordered restore of a backup set into a server (P2), and its dry run.

The set is checked first (every hash) and nothing touches the target until that passes. The
database is then restored under a temporary name: roles converged, ``pg_restore`` run section
by section (pre-data, data, post-data, with ``--jobs``), row counts and sequence values
compared with the manifest. Only a restore that passed all of that is renamed into place (and
with ``--clean`` replaces the old database), so a failure at any point leaves the target as
it was.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from harness.config import PgTarget
from harness.errors import DrillError, RestoreError, VerificationFailed
from harness.pg.binaries import PgBinaries, client_tools_for, find_binaries
from harness.pg.globals import Globals, converge, read_globals
from harness.pg.sql import (
    connect,
    count_in,
    database_exists,
    require_destructive,
    terminate_sessions,
)
from harness.pg.toc import STEPS, count_by_step
from harness.proc import run
from harness.redact import get_logger
from harness.sets.check import SetCheck, require_good_set
from harness.sets.manifest import Location, Manifest
from harness.verify.checks import CheckResult, failures, render
from harness.verify.compare import Fingerprint, compare, take_fingerprint

log = get_logger(__name__)

Progress = Callable[[str], None]
RESTORE_TIMEOUT = 12 * 3600.0
# Phases whose failure means the input was wrong (exit 2), not that the restore failed.
INPUT_PHASES = frozenset({"target", "version"})


@dataclass(frozen=True)
class PlanStep:
    """One step of the ordered restore."""

    step: str
    description: str
    objects: int


@dataclass(frozen=True)
class RestorePlan:
    """What a restore will do, before it does anything."""

    source: str
    target: str
    dbname: str
    steps: tuple[PlanStep, ...]
    target_exists: bool
    will_drop: tuple[str, ...]
    roles_to_create: tuple[str, ...]
    tools: str

    def render(self) -> str:
        """The plan as numbered lines, for the terminal."""
        lines = [f"restore plan: {self.source} -> {self.target} (tools: {self.tools})"]
        if self.will_drop:
            lines.append(
                f"  --clean will replace database {self.dbname}, dropping: "
                + ", ".join(self.will_drop)
            )
        for i, s in enumerate(self.steps, start=1):
            lines.append(f"  {i:2d}. {s.step:<10} {s.objects:6d}  {s.description}")
        if self.roles_to_create:
            lines.append("  roles to create: " + ", ".join(self.roles_to_create))
        return "\n".join(lines)


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
        dry_run: only check the set and print the plan; change nothing.
        progress: called with one line per step (the CLI prints them to stderr).

    Raises:
        RestoreError: a precondition failed (``phase`` in :data:`INPUT_PHASES`) or a step
            failed; the target is unchanged in both cases.
        VerificationFailed: the set failed its checks, or the restored database does not
            match the manifest.

    """
    say = progress or (lambda line: log.info("%s", line))
    started = time.monotonic()
    say(f"checking {location.uri}")
    checked = require_good_set(location, workdir=workdir)
    manifest = checked.manifest
    plan, tools, snapshot = _plan(checked, manifest, target, clean=clean)
    say(plan.render())
    if dry_run:
        return RestoreResult(
            plan=plan,
            checks=checked.results,
            role_actions=(),
            seconds=time.monotonic() - started,
            dry_run=True,
        )

    scratch = f"{target.dbname}__restoring_{secrets.token_hex(4)}"[:63]
    staged = target.with_dbname(scratch)
    _create_database(target, scratch)
    try:
        say("step roles: converging roles, attributes, memberships and settings")
        actions = converge(staged, snapshot, dbname="")
        dump = checked.root / manifest.dump_path()
        for section, label in (
            ("pre-data", "extensions, types, schema, views, functions"),
            ("data", "table data and sequence values"),
            ("post-data", "indexes, constraints, triggers, RLS, grants"),
        ):
            say(f"step {section}: {label}")
            _pg_restore(tools, staged, dump, section=section, jobs=jobs)
        # Owner, settings, grants and comment belong to the database's oid: applied now,
        # they survive the rename and are part of what is verified.
        actions += _database_settings(staged, snapshot)
        say("verifying row counts and sequence values against the manifest")
        results = verify_against_manifest(staged, manifest)
        if "fingerprint" in {a.kind for a in manifest.artifacts}:
            say("verifying data and catalog against the backup's fingerprint")
            results += _verify_fingerprint(checked.root, manifest, staged)
        bad = failures(results)
        if bad:
            raise VerificationFailed(
                f"the restored database does not match the backup:\n{render(bad)}", checks=results
            )
        say(f"putting the restored database in place as {target.dbname}")
        _swap_into_place(target, scratch, replace=plan.target_exists)
    except BaseException:
        _drop_scratch(target, scratch)
        raise
    seconds = time.monotonic() - started
    say(f"restored {target.display()} in {seconds:.1f} s")
    return RestoreResult(
        plan=plan,
        checks=checked.results + tuple(results),
        role_actions=tuple(actions),
        seconds=seconds,
        dry_run=False,
    )


def _plan(
    checked: SetCheck, manifest: Manifest, target: PgTarget, *, clean: bool
) -> tuple[RestorePlan, PgBinaries, Globals]:
    with connect(target.with_dbname("postgres")) as conn:
        target_major = conn.info.server_version // 10000
        current = read_globals(conn)
    if manifest.source_major > target_major:
        raise RestoreError(
            f"the set was taken from PostgreSQL {manifest.source_server_version} but "
            f"{target.display()} runs PostgreSQL {target_major}; restore into a server of "
            f"version {manifest.source_major} or newer",
            phase="version",
        )
    tools = _restore_tools(manifest.source_major, target_major)
    exists = database_exists(target, target.dbname)
    contents = _contents(target) if exists else []
    if contents and not clean:
        raise RestoreError(
            f"database {target.dbname} on {target.display()} is not empty ({_summary(contents)}"
            "); pass --clean to replace it, or restore into a new database name",
            phase="target",
        )
    if contents:
        require_destructive(target, f"replace database {target.dbname}")
    snapshot = Globals.from_json((checked.root / manifest.artifact("globals").path).read_text())
    counts = count_by_step(list(checked.toc))
    counts["roles"] = len(snapshot.roles)
    steps = tuple(PlanStep(step, description, counts.get(step, 0)) for step, description in STEPS)
    have = {r.name for r in current.roles}
    plan = RestorePlan(
        source=checked.location,
        target=target.display(),
        dbname=target.dbname,
        steps=steps,
        target_exists=exists,
        will_drop=tuple(contents),
        roles_to_create=tuple(r.name for r in snapshot.roles if r.name not in have),
        tools=tools.describe(),
    )
    return plan, tools, snapshot


def _restore_tools(source_major: int, target_major: int) -> PgBinaries:
    """pg_restore of the target's version: it reads the archive and writes SQL the target takes."""
    try:
        return find_binaries(major=target_major)
    except DrillError:
        tools = client_tools_for(source_major)
        log.warning(
            "no PostgreSQL %d client tools here; restoring with %s", target_major, tools.describe()
        )
        return tools


def _contents(target: PgTarget) -> list[str]:
    """User objects in the target database, as ``kind schema.name`` (at most 20)."""
    with connect(target) as conn:
        rows = conn.execute(
            "SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' "
            "WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'p' THEN 'table' "
            "ELSE 'relation' END || ' ' || n.nspname || '.' || c.relname "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%%' "
            "UNION ALL SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid "
            "AND d.deptype = 'e') ORDER BY 1 LIMIT 21"
        ).fetchall()
    return [str(r[0]) for r in rows]


def _summary(contents: list[str]) -> str:
    shown = ", ".join(contents[:20])
    return shown + (", ..." if len(contents) > 20 else "")


def _create_database(target: PgTarget, name: str) -> None:
    with connect(target.with_dbname("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


def _drop_scratch(target: PgTarget, name: str) -> None:
    try:
        with connect(target.with_dbname("postgres"), autocommit=True) as conn:
            terminate_sessions(conn, name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except Exception:  # cleanup after a failure: report the original error, log this one
        log.exception("could not drop the half-restored database %s; drop it by hand", name)


def _pg_restore(
    tools: PgBinaries, staged: PgTarget, dump: Path, *, section: str, jobs: int
) -> None:
    argv: list[str | Path] = [
        tools.tool("pg_restore"),
        "--exit-on-error",
        "--no-password",
        f"--section={section}",
        f"--dbname={staged.dbname}",
    ]
    if section != "pre-data" and jobs > 1:
        argv.append(f"--jobs={jobs}")
    try:
        run([*argv, dump], timeout=RESTORE_TIMEOUT, env=staged.libpq_env())
    except DrillError as exc:
        raise RestoreError(str(exc), phase=section) from exc


def _swap_into_place(target: PgTarget, scratch: str, *, replace: bool) -> None:
    with connect(target.with_dbname("postgres"), autocommit=True) as conn:
        for name in (scratch, target.dbname):
            terminate_sessions(conn, name)
        if replace:
            require_destructive(target, f"replace database {target.dbname}")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(target.dbname))
            )
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(scratch), sql.Identifier(target.dbname)
            )
        )


def _verify_fingerprint(
    root: Path, manifest: Manifest, staged: PgTarget
) -> tuple[CheckResult, ...]:
    expected = Fingerprint.from_json((root / manifest.artifact("fingerprint").path).read_text())
    actual = take_fingerprint(staged)
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
    return checks


def _database_settings(target: PgTarget, snapshot: Globals) -> list[str]:
    """Owner, settings, role-in-database settings and grants of the restored database."""
    try:
        return converge(target, snapshot, dbname=target.dbname)  # roles already converged
    except RestoreError as exc:
        raise RestoreError(
            f"the database was restored, but {exc}", phase="database settings"
        ) from exc


def verify_against_manifest(target: PgTarget, manifest: Manifest) -> tuple[CheckResult, ...]:
    """Compare exact row counts and sequence positions of ``target`` with the manifest."""
    results = []
    with connect(target) as conn:
        conn.execute("SET row_security = off")
        wrong = []
        for t in manifest.tables:
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
    return tuple(results)
