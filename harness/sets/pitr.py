"""Point-in-time recovery: a base backup (plus its incremental chain) and archived WAL.

The steps, in the order that keeps a failure cheap:

1. read the set's manifest chain and the WAL archive's sidecars;
2. check the timeline to follow (:mod:`harness.sets.timelines`) and that the WAL chain
   from the backup's start to the target has no hole (consecutive segments along the
   timelines), and name the first missing segment if it has one
   (:class:`~harness.errors.WalGapError`) -- before anything is downloaded or started;
3. stage every needed segment locally, checksums verified, in the background
   (:class:`~harness.sets.wal_feed.WalFeed`) while the data directory is built (unpack, or
   ``pg_combinebackup`` a chain and ``pg_verifybackup`` the result);
4. write ``recovery.signal``, start a throwaway server with the recovery target settings
   (its ``restore_command`` waits for each segment still being staged), wait until it
   pauses at the target or promotes;
5. report the timeline and LSN reached. A target past the end of the archive makes
   PostgreSQL stop with "recovery ended before configured recovery target was reached";
   that line is surfaced as :class:`~harness.errors.RecoveryTargetNotReached`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psycopg

from harness.config import PgTarget
from harness.errors import (
    ConfigError,
    ConnectError,
    RecoveryTargetNotReached,
    RestoreError,
    ServerStartError,
    TimelineError,
    WaitTimeout,
)
from harness.pg.binaries import PgBinaries
from harness.pg.sql import connect
from harness.pg.wal import TimelineSpan, parse_lsn, parse_segment_name
from harness.redact import get_logger
from harness.sets import timelines
from harness.sets.physical import PhysicalManifest, materialize, read_chain
from harness.sets.recovery_target import RecoveryTarget, parse_target, time_target
from harness.sets.wal_archive import WalArchive, read_archive
from harness.sets.wal_feed import WalFeed
from harness.storage.base import ObjectStore
from harness.waiting import wait_until

__all__ = [
    "ACTIONS",
    "RecoveryPlan",
    "RecoveryResult",
    "RecoveryServer",
    "RecoveryTarget",
    "ServerMaker",
    "explain_failure",
    "parse_target",
    "plan_recovery",
    "recover",
    "time_target",
]

log = get_logger(__name__)

TARGET_NOT_REACHED = "recovery ended before configured recovery target was reached"
ACTIONS = ("pause", "promote")


class RecoveryServer(Protocol):
    """A throwaway server a recovery runs in (``harness.infra.recovery_server``)."""

    @property
    def datadir(self) -> Path:
        """Its data directory."""

    @property
    def log_path(self) -> Path:
        """Its server log."""

    @property
    def binaries(self) -> PgBinaries:
        """The binaries it runs."""

    @property
    def running(self) -> bool:
        """True while its postmaster runs."""

    def start(self) -> object:
        """Start it; raises :class:`ServerStartError` when it does not come up."""

    def stop(self) -> None:
        """Stop it (idempotent)."""

    def remove(self) -> None:
        """Stop it and delete its directory."""

    def target(self, dbname: str = "postgres") -> PgTarget:
        """Superuser connection details for ``dbname``."""

    def log_text(self) -> str:
        """Its whole log."""

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of its log."""


class ServerMaker(Protocol):
    """Makes the server a recovery runs in (``harness.infra.recovery_server``)."""

    @property
    def binaries(self) -> PgBinaries:
        """The binaries its servers run: the set's major version."""

    def __call__(
        self, workdir: Path, settings: tuple[tuple[str, str], ...], *, start_timeout: float
    ) -> RecoveryServer:
        """A server (not started) on ``workdir/data`` with ``settings`` added."""


@dataclass(frozen=True)
class RecoveryPlan:
    """What a recovery will use, checked before anything is downloaded."""

    set_prefix: str
    chain: tuple[tuple[str, PhysicalManifest], ...]
    wal: tuple[str, ...]
    target: RecoveryTarget
    lineage: tuple[TimelineSpan, ...]
    archive: WalArchive

    @property
    def base(self) -> PhysicalManifest:
        """The newest set of the chain (the one recovery starts from)."""
        return self.chain[-1][1]


def plan_recovery(
    store: ObjectStore, set_prefix: str, target: RecoveryTarget, *, timeline: str = "current"
) -> RecoveryPlan:
    """Read the set chain and the archive; check the WAL chain is complete up to the target.

    Args:
        store: the object store holding the set and the WAL archive.
        set_prefix: key prefix of the physical set (``base/<name>``).
        target: where recovery stops.
        timeline: ``current`` (the backup's), ``latest``, or a timeline number to follow.

    Raises:
        ManifestError: the set is incomplete or unreadable.
        TimelineError: the timeline is not in the archive, or not a descendant of the
            backup's (:mod:`harness.sets.timelines`).
        WalGapError: a needed segment is missing; the message names it.
        RestoreError: an LSN target lies before the backup became consistent.

    """
    chain = read_chain(store, set_prefix)
    base = chain[-1][1]
    archive = read_archive(store, base.wal_prefix, segment_size=base.wal_segment_size)
    spans = timelines.lineage(store, archive, base, timeline)
    start, stop = parse_lsn(base.start_lsn), parse_lsn(base.stop_lsn)
    end: int | None = None
    if target.kind == "lsn":
        end = parse_lsn(target.value)
        if end < stop:
            raise RestoreError(
                f"target LSN {target.value} lies before the end of base backup {base.name!r} "
                f"({base.stop_lsn}), where it first becomes consistent; pick an older backup",
                phase="plan",
            )
    elif target.kind == "immediate":
        end = stop
    names = archive.chain(base.timeline, start, end, lineage=spans)
    last = parse_segment_name(names[-1], base.wal_segment_size)[1]
    if end is None and last < stop // base.wal_segment_size:
        # The archive must reach at least the end of the backup to make it consistent.
        archive.chain(base.timeline, start, stop, lineage=spans)
    return RecoveryPlan(
        set_prefix, tuple(chain), tuple([*archive.histories(), *names]), target, spans, archive
    )


@dataclass(frozen=True)
class RecoveryResult:
    """A recovered server and where recovery stopped."""

    server: RecoveryServer
    target: RecoveryTarget
    timeline: int
    lsn: str
    paused: bool
    seconds: float
    wal_files: int
    sets: tuple[str, ...]


def recover(
    store: ObjectStore,
    set_prefix: str,
    target: RecoveryTarget,
    *,
    servers: ServerMaker,
    workdir: Path,
    action: str = "promote",
    timeout: float = 600.0,
    loopback_trust: bool = False,
    timeline: str = "current",
) -> RecoveryResult:
    """Recover the set at ``set_prefix`` to ``target`` into a new throwaway server.

    Args:
        store: the object store holding the set and the WAL archive.
        set_prefix: key prefix of the physical set (``base/<name>``).
        target: where recovery stops.
        servers: makes the recovered server (binaries of the set's major version), e.g.
            ``harness.infra.recovery_server.RecoveryServers(template)``.
        workdir: a new directory: the data directory, staged WAL and server log go here.
        action: ``pause`` (stay in recovery at the target) or ``promote``.
        timeout: seconds for the server to reach the target.
        loopback_trust: let the harness log in without the source's password (trust on
            127.0.0.1 only); for sets of servers the harness did not create.
        timeline: the timeline to follow: ``current`` (the backup's), ``latest``, or a
            number.

    Raises:
        ConfigError: bad action or timeline, or binaries of another major version than the
            set's.
        TimelineError: the timeline is not in the archive or not a descendant of the
            backup's; nothing was started.
        WalGapError: the WAL chain has a hole; nothing was started.
        RecoveryTargetNotReached: the archive ends before the target.
        RestoreError: the base backup could not be built or the server did not recover.

    """
    if action not in ACTIONS:
        raise ConfigError(f"unknown recovery action {action!r}; use pause or promote")
    started = time.monotonic()
    plan = plan_recovery(store, set_prefix, target, timeline=timeline)
    base = plan.base
    binaries = servers.binaries
    if binaries.major != base.source_major:
        raise ConfigError(
            f"set {base.name!r} is PostgreSQL {base.source_major} but the binaries are "
            f"{binaries.version}; use PostgreSQL {base.source_major} binaries"
        )
    server_dir = workdir / "server"
    if server_dir.exists():
        raise RestoreError(f"{server_dir} already exists; use a new directory", phase="input")
    server_dir.mkdir(parents=True)
    datadir = server_dir / "data"
    # WAL is staged while the data directory is built and while the server replays it.
    feed = WalFeed(store, plan.archive, plan.wal, server_dir / "wal-staging", timeout=timeout)
    feed.start()
    try:
        materialize(store, list(plan.chain), datadir, binaries=binaries, workdir=workdir)
        (datadir / "recovery.signal").write_text("")
        if loopback_trust:
            _trust_loopback(datadir)
        extra = [
            ("restore_command", feed.restore_command),
            ("recovery_target_timeline", timelines.setting(plan.lineage, base)),
            ("recovery_target_action", action),
            # The recovered copy must not archive into (or summarise for) the source's archive.
            ("archive_mode", "off"),
            *target.settings(),
        ]
        if base.source_major >= 17:
            extra.append(("summarize_wal", "off"))
        server = servers(server_dir, tuple(extra), start_timeout=timeout)
        try:
            server.start()
        except ServerStartError as exc:
            raise _recovery_error(server, target, str(exc), feed) from exc
        try:
            paused = _wait_for_target(server, target, action=action, timeout=timeout, feed=feed)
            reached, lsn = _position(server, paused=paused)
        except BaseException:
            server.stop()
            raise
    finally:
        feed.close()
    log.info("recovered %s to %s: timeline %d, LSN %s", set_prefix, target.describe(), reached, lsn)
    return RecoveryResult(
        server=server,
        target=target,
        timeline=reached,
        lsn=lsn,
        paused=paused,
        seconds=time.monotonic() - started,
        wal_files=len(plan.wal),
        sets=tuple(prefix for prefix, _ in plan.chain),
    )


def _trust_loopback(datadir: Path) -> None:
    hba = datadir / "pg_hba.conf"
    original = hba.read_text() if hba.exists() else ""
    hba.write_text(
        "# drill pitr: the recovered copy listens on 127.0.0.1 only; logins there are trusted\n"
        "host all all 127.0.0.1/32 trust\n" + original
    )


def explain_failure(log_text: str, target: RecoveryTarget) -> RestoreError | None:
    """The cause of a failed recovery PostgreSQL's log names, as an error; None if unknown.

    A wrong timeline gives :class:`TimelineError`; a target after the end of the archived
    WAL gives :class:`RecoveryTargetNotReached`.
    """
    for line in log_text.splitlines():
        if "FATAL" in line and any(m in line for m in timelines.POSTGRES_MESSAGES):
            said = line.split("FATAL:", 1)[-1].strip()
            number = re.search(r"timeline (\d+)", said)
            return TimelineError(
                f"PostgreSQL refused the recovery timeline: '{said}'; recover along the "
                "backup's own timeline ('current') or one that descends from it",
                timeline=int(number.group(1)) if number else 0,
                phase="recover",
            )
    if TARGET_NOT_REACHED in log_text:
        return RecoveryTargetNotReached(
            f"PostgreSQL reports '{TARGET_NOT_REACHED}' for {target.describe()}: the archived "
            "WAL ends before it; pick an earlier target (or check that archiving kept up)",
            phase="recover",
        )
    return None


def _recovery_error(
    server: RecoveryServer, target: RecoveryTarget, detail: str, feed: WalFeed
) -> RestoreError:
    staging = feed.error()
    if isinstance(staging, RestoreError):
        return staging  # a WAL file could not be staged: that stopped the recovery
    known = explain_failure(server.log_text(), target)
    if known is not None:
        return known
    return RestoreError(
        f"the recovered server failed: {detail.splitlines()[0] if detail else ''}\n"
        f"--- last lines of {server.log_path} ---\n{server.log_tail()}",
        phase="recover",
    )


def _wait_for_target(
    server: RecoveryServer, target: RecoveryTarget, *, action: str, timeout: float, feed: WalFeed
) -> bool:
    """Wait until recovery paused at the target or promoted; True when paused."""

    def reached() -> str | None:
        if not server.running:
            raise _recovery_error(server, target, "the server stopped during recovery", feed)
        with connect(server.target()) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and not row[0]:
                return "promoted"
            if action == "pause":
                state = conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
                if state is not None and state[0] == "paused":
                    return "paused"
        return None

    try:
        how = wait_until(
            reached,
            timeout=timeout,
            interval=0.05,
            what=f"recovery to reach {target.describe()}",
            transient=(psycopg.OperationalError, ConnectError),
        )
    except WaitTimeout as exc:
        raise _recovery_error(server, target, str(exc), feed) from exc
    return how == "paused"


def _position(server: RecoveryServer, *, paused: bool) -> tuple[int, str]:
    with connect(server.target(), autocommit=True) as conn:
        if paused:
            row = conn.execute(
                "SELECT pg_last_wal_replay_lsn()::text, "
                "(SELECT timeline_id FROM pg_control_checkpoint())"
            ).fetchone()
        else:
            # The end-of-recovery checkpoint may still be pending; after this one the
            # control file names the new timeline.
            conn.execute("CHECKPOINT")
            row = conn.execute(
                "SELECT pg_current_wal_lsn()::text, "
                "(SELECT timeline_id FROM pg_control_checkpoint())"
            ).fetchone()
    if row is None:
        raise RestoreError("the recovered server reports no WAL position", phase="report")
    return int(row[1]), str(row[0])
