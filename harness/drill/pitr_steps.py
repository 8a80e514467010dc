"""Steps the point-in-time recovery drills share: archive, base backups, recover, verify.

A physical method is a way of archiving (``streaming``: ``pg_receivewal``;
``archive-command``: the server's ``archive_command`` with a one-second
``archive_timeout``), optionally with an incremental chain (PostgreSQL 17+: a full base
backup, more writes, an incremental backup on top; recovery combines them with
``pg_combinebackup``). The source server must be made with :meth:`Archiving.settings`,
because ``archive_command`` and ``summarize_wal`` are server settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from psycopg import sql

from harness.config import PgTarget
from harness.drill import scenario
from harness.drill.dataset import invariants
from harness.drill.run import DrillRun
from harness.drill.writer import ContinuousWriter
from harness.errors import ConfigError, DrillError, UnsupportedByProvider
from harness.infra.pg_server import ClusterTemplate, ServerSettings
from harness.infra.providers.base import PgServer
from harness.infra.recovery_server import RecoveryServers
from harness.pg.sql import connect, require_destructive
from harness.sets.physical import PhysicalBackup, take_base_backup
from harness.sets.pitr import RecoveryResult, RecoveryTarget, recover, time_target
from harness.sets.table_copy import RepairResult, repair_tables
from harness.sets.wal_receive import CommandArchiver, StreamingArchiver, UploadReport
from harness.storage.base import ObjectStore
from harness.verify.compare import Fingerprint, compare, take_fingerprint
from harness.verify.rls import RlsBehaviour, behaviour_check, rls_behaviour
from harness.waiting import wait_until

MODES = ("streaming", "archive-command")
FULL_PREFIX = "base/full"
INCREMENTAL_PREFIX = "base/incremental"
WAL_PREFIX = "wal"
# Writes committed between the full and the incremental backup, so the chain carries some.
WRITES_BETWEEN_BACKUPS = 5

# What a recovery legitimately brings back differently, by PostgreSQL's design: sequences
# are WAL-logged ahead of use (32 values at a time), so they may stand a little past where
# they stood at the target, never behind; unlogged tables (session_cache) are not in the WAL
# and come back empty. The writer's canary rows are measured on their own.
IGNORE = ("canary", "_seq", "session_cache")


@dataclass
class Archiving:
    """One source's continuous archiving, either way, and its base backups."""

    mode: str
    store: ObjectStore
    spool: Path
    workdir: Path
    incremental: bool = False
    command: CommandArchiver | None = None
    streaming: StreamingArchiver | None = None
    backups: list[PhysicalBackup] = field(default_factory=list)

    def describe(self) -> str:
        """The method, for the timeline and the facts."""
        chain = ", full + incremental chain" if self.incremental else ""
        return f"base backup + WAL ({self.mode}{chain})"

    def settings(self) -> ServerSettings:
        """Settings the source server must start with."""
        extra: tuple[tuple[str, str], ...] = ()
        if self.command is not None:
            extra += self.command.settings(archive_timeout=1)
        if self.incremental:
            extra += (("summarize_wal", "on"),)  # what incremental backups are computed from
        return ServerSettings(extra=extra)

    def start(self, server: PgServer) -> None:
        """Begin archiving ``server``'s WAL into the store.

        Raises:
            UnsupportedByProvider: an incremental chain on PostgreSQL older than 17.

        """
        if self.incremental and server.binaries.major < 17:
            raise UnsupportedByProvider(
                f"incremental backups need PostgreSQL 17+, this server is {server.binaries.version}"
            )
        if self.command is not None:
            self.command.start()
        else:
            self.streaming = StreamingArchiver(
                server.target(), server.binaries, self.store, spool=self.spool, prefix=WAL_PREFIX
            ).start()

    def flush(self, server: PgServer, *, timeout: float = 30.0) -> str:
        """Close the current WAL segment and wait until the archive holds it; return its name.

        The server keeps running (and archiving): this makes the archive reach "now".

        Raises:
            WaitTimeout: the segment was not archived within ``timeout`` seconds.

        """
        with connect(server.target(), autocommit=True) as conn:
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        if row is None:
            raise DrillError("pg_switch_wal() returned no row")
        segment = str(row[0])
        key = f"{WAL_PREFIX}/{segment}.json"  # the sidecar is written after the segment
        wait_until(
            lambda: bool(self.store.list(key)),
            timeout=timeout,
            interval=0.1,
            what=f"WAL segment {segment} to reach the archive",
        )
        return segment

    def stop(self) -> UploadReport:
        """Upload what is left (the streamed tail too) and stop, bounded in time."""
        if self.command is not None:
            return self.command.stop(timeout=30)
        if self.streaming is None:
            raise ConfigError("archiving was never started")
        return self.streaming.stop(timeout=30)

    @property
    def newest(self) -> PhysicalBackup:
        """The newest base backup (the one recovery starts from).

        Raises:
            ConfigError: none was taken.

        """
        if not self.backups:
            raise ConfigError("no base backup was taken")
        return self.backups[-1]


def archiving(
    store: ObjectStore, workdir: Path, *, mode: str = "streaming", incremental: bool = False
) -> Archiving:
    """Prepare archiving of kind ``mode`` into ``store`` (an incremental chain on request).

    Raises:
        ConfigError: an unknown mode.

    """
    if mode not in MODES:
        raise ConfigError(f"unknown archiving mode {mode!r}; use one of {MODES}")
    spool = workdir / "wal-spool"
    command = (
        CommandArchiver(store, spool=spool, prefix=WAL_PREFIX)
        if mode == "archive-command"
        else None
    )
    return Archiving(mode, store, spool, workdir, incremental=incremental, command=command)


def template_of(server: PgServer) -> ClusterTemplate:
    """The template a server was copied from (recovered servers use its binaries).

    Raises:
        UnsupportedByProvider: the server is not a throwaway server of the embedded provider.

    """
    template = getattr(server, "template", None)
    if not isinstance(template, ClusterTemplate):
        raise UnsupportedByProvider("point-in-time recovery drills need the embedded provider")
    return template


def back_up(
    run: DrillRun, server: PgServer, plan: Archiving, *, writes: ContinuousWriter
) -> PhysicalBackup:
    """Take the drill's base backup(s) while ``writes`` keeps committing (phase ``backup``).

    An incremental method takes a full backup, lets the application commit
    :data:`WRITES_BETWEEN_BACKUPS` more writes, and takes an incremental backup on top.
    The check ``writes during backup`` passes when the application committed meanwhile and
    none of its writes failed.

    Raises:
        BackupError: a backup failed.
        WaitTimeout: the application stopped committing between the two backups.

    """
    before = writes.report()
    kind = "full + incremental" if plan.incremental else "plain"
    with run.phase("backup", f"pg_basebackup ({kind}), WAL from the archive, under live writes"):
        plan.backups.append(_take(server, plan, FULL_PREFIX))
        if plan.incremental:
            writes.wait_for_commits(WRITES_BETWEEN_BACKUPS)
            plan.backups.append(_take(server, plan, INCREMENTAL_PREFIX, parent=FULL_PREFIX))
        # Close the segment holding the backup's end so the archive makes it consistent.
        plan.flush(server)
    scenario.check_writes_during(run, before, writes.report())
    for backup in plan.backups:
        manifest = backup.manifest
        run.facts[f"base backup {manifest.name}"] = (
            f"{manifest.backup_type}: WAL {manifest.start_lsn}..{manifest.stop_lsn}, "
            f"timeline {manifest.timeline}, {sum(a.size for a in manifest.artifacts)} bytes "
            f"in {backup.seconds:.1f} s"
        )
    return plan.newest


def _take(
    server: PgServer, plan: Archiving, prefix: str, parent: str | None = None
) -> PhysicalBackup:
    return take_base_backup(
        server.target(),
        server.binaries,
        plan.store,
        prefix=prefix,
        workdir=plan.workdir / "bb",
        wal_prefix=WAL_PREFIX,
        incremental_from=parent,
    )


def stop_archiving(run: DrillRun, plan: Archiving) -> UploadReport:
    """Stop archiving (after the disaster); record what went into the archive."""
    upload = plan.stop()
    run.facts["archiving"] = (
        f"{plan.mode}: {len(upload.uploaded)} files, {upload.raw_bytes} bytes stored as "
        f"{upload.stored_bytes}; {len(upload.pending)} left behind"
    )
    return upload


def recover_to(
    run: DrillRun,
    plan: Archiving,
    target: RecoveryTarget,
    *,
    source: PgServer,
    workdir: Path,
    action: str = "promote",
) -> RecoveryResult:
    """Recover the newest base backup (and chain) to ``target`` (phase ``restore``).

    The recovered server is a throwaway server of ``source``'s template (its binaries).

    Raises:
        UnsupportedByProvider: ``source`` is not a server of the embedded provider.
        WalGapError: the archive has a hole before the target; nothing was started.
        RestoreError: the recovery failed.

    """
    with run.phase("restore", f"{plan.describe()} replayed to {target.describe()}"):
        return _recover(run, plan, target, source=source, workdir=workdir, action=action)


def _recover(
    run: DrillRun,
    plan: Archiving,
    target: RecoveryTarget,
    *,
    source: PgServer,
    workdir: Path,
    action: str,
) -> RecoveryResult:
    servers = RecoveryServers(template_of(source))
    result = recover(
        plan.store,
        plan.newest.prefix,
        target,
        servers=servers,
        workdir=workdir / "pitr",
        action=action,
        timeout=300,
    )
    run.facts["recovered to"] = (
        f"{target.describe()}: timeline {result.timeline}, LSN {result.lsn}, "
        f"{result.wal_files} WAL files, sets {', '.join(result.sets)}"
    )
    return result


def reference(app: PgTarget, writes: ContinuousWriter) -> tuple[Fingerprint, RlsBehaviour]:
    """The application's state and RLS behaviour, taken with the writer held between commits.

    Only the writer's canary rows may change after this (the comparison ignores them).
    """
    with writes.paused():
        # The probes first: the writer's session is connected, so sequences their triggers
        # advance stay advanced (see rls_behaviour), and the fingerprint must include that.
        behaviour = rls_behaviour(app)
        return take_fingerprint(app), behaviour


def verify_recovered(
    run: DrillRun, new: PgTarget, before: Fingerprint, rls_before: RlsBehaviour
) -> None:
    """After a recovery into a new server: the application as it was, the same RLS."""
    with run.phase("verify"):
        after = take_fingerprint(new)
        run.record_comparison(before, after, compare(before, after, ignore=IGNORE))
        run.add([behaviour_check(rls_before, rls_behaviour(new))])
        run.add(invariants(new))
        run.verified()


def server_now(target: PgTarget) -> datetime:
    """The server's clock (recovery times are compared with commit times it wrote)."""
    with connect(target) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    if row is None:
        raise DrillError("SELECT clock_timestamp() returned no row")
    moment: datetime = row[0]
    return moment


def repair_from_point(
    run: DrillRun,
    plan: Archiving,
    server: PgServer,
    app: PgTarget,
    tables: tuple[str, ...],
    moment: datetime,
    *,
    workdir: Path,
) -> RepairResult:
    """Recover a copy to just before ``moment`` and repair ``tables`` of ``app`` from it.

    Phase ``restore``: the archive is brought up to now (the live server keeps running), a
    copy is recovered and paused just before ``moment`` (read-only, no new timeline), the
    damaged tables are replaced from it in one transaction, and the copy is removed.

    Raises:
        RestoreError: the recovery or the repair failed (the live tables are unchanged).
        VerificationFailed: a repaired table differs from the copy (rolled back).

    """
    target = time_target(moment)
    with run.phase("restore", f"{', '.join(tables)} from a copy recovered to {target.describe()}"):
        plan.flush(server)
        result = _recover(run, plan, target, source=server, workdir=workdir, action="pause")
        try:
            repaired = repair_tables(result.server.target(app.dbname), app, tables)
        finally:
            result.server.remove()
    run.facts["repaired tables"] = "; ".join(
        f"{t.table}: {t.rows_before} -> {t.rows_after} rows (kept {t.kept_copy})"
        for t in repaired.tables
    )
    run.add(repaired.checks)
    return repaired


@dataclass(frozen=True)
class Mistake:
    """An operator's mistake, and when it happened by both clocks."""

    at: datetime  # the server's clock just before the mistake's transaction
    xid: int  # the mistake's transaction
    taken: float  # time.monotonic() just before it
    committed: float  # time.monotonic() when its commit returned


def make_mistake(app: PgTarget, statement: sql.SQL | sql.Composed) -> Mistake:
    """Run ``statement`` in a transaction of its own, as an operator with superuser rights.

    The application's preventive control (an event trigger against DROP) is bypassed, as
    such an operator can: the drill is about recovering, not preventing.

    Raises:
        UnsafeTargetError: the target may not take destructive steps.

    """
    require_destructive(app, "run a destructive statement")
    with connect(app) as conn:
        row = conn.execute("SELECT clock_timestamp(), txid_current()").fetchone()
        if row is None:
            raise DrillError("SELECT clock_timestamp(), txid_current() returned no row")
        taken = time.monotonic()
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(statement)
        conn.commit()
        committed = time.monotonic()
    return Mistake(at=row[0], xid=int(row[1]), taken=taken, committed=committed)


def load_bulk(run: DrillRun, app: PgTarget, rows: int) -> None:
    """Add ``public.bulk_events`` with ``rows`` rows (phase ``seed``): a large data set.

    Raises:
        UnsafeTargetError: the target may not take destructive steps.

    """
    require_destructive(app, "load a bulk table")
    with run.phase("seed", f"{rows} rows into public.bulk_events"), connect(app) as conn:
        conn.execute(
            "CREATE TABLE public.bulk_events (id bigint PRIMARY KEY, body text NOT NULL, "
            "at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO public.bulk_events SELECT g, md5(g::text), "
            "timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.commit()
    run.facts["bulk rows"] = str(rows)
