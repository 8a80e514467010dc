"""Benchmark: harness point-in-time recovery against raw pg_basebackup + replay, and pgBackRest.

The database is ``pgbench -i -s SCALE`` (scale 10 = 1 M accounts rows). Base backups are
taken, then pgbench runs for DURATION seconds and a restore point ends the window. One
``archive_command`` hands every WAL segment to each contender, so all replay the same WAL:

- raw: ``pg_basebackup -Fp -X none --no-sync`` into a directory, WAL copied with ``cp`` into
  another; recovery = ``cp -a`` of the backup, ``recovery.signal``, ``restore_command = cp``;
- harness: :func:`take_base_backup` (``-Ft``, every file checked against PostgreSQL's
  manifest while it is gzip-compressed, published with manifests) into a local object
  store, WAL through :class:`CommandArchiver` (gzip, SHA-256 sidecars), recovery with
  :func:`recover` (hashes checked, WAL staged and checked while it is replayed);
- pgBackRest (Debian's, PostgreSQL <= 15 only: compared on a PostgreSQL 15 source, harness
  measured again there): posix repository, ``archive-push``, ``backup --type=full``,
  ``restore --type=name``.

Timed (RUNS times each, alternating who goes first; medians): the base backup, and the
recovery up to the restore point (from the restore's first step until the server is paused
there; removing it afterwards is not timed); the ratio is the sum of both medians. Then
the RPO under load: streaming archiving, a canary writer every 100 ms plus pgbench,
disaster = immediate stop; RPO = the disaster time minus the newest canary row recovered.

    python bench/pitr.py [--scale 10] [--duration 60] [--runs 5] [--rpo-seconds 10]
"""

import argparse
import os
import shlex
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from harness.drill import canary
from harness.drill.writer import ContinuousWriter
from harness.errors import DrillError
from harness.infra.pg_server import SUPERUSER, ClusterTemplate, ServerSettings, ThrowawayServer
from harness.infra.privilege import ServerIdentity, choose_identity
from harness.infra.recovery_server import RecoveryServers
from harness.pg.binaries import find_binaries
from harness.pg.sql import connect
from harness.proc import run, spawn, stop_process
from harness.sets.physical import take_base_backup
from harness.sets.pitr import RecoveryTarget, recover
from harness.sets.wal_receive import CommandArchiver, StreamingArchiver
from harness.storage.local import LocalObjectStore
from harness.waiting import wait_until

POINT = "bench-end"
TIMEOUT = 1800.0

_WRAPPER = """#!/bin/sh
# The benchmark's archive_command: each WAL segment to every contender, the harness last.
set -eu
if [ ! -f {raw}/"$2" ]; then cp "$1" {raw}/".tmp-$2"; mv {raw}/".tmp-$2" {raw}/"$2"; fi
{pgbackrest}exec {harness} "$1" "$2"
"""

_PGBACKREST_CONF = """[global]
repo1-path={root}/repo
log-path={root}/log
lock-path={root}/lock
spool-path={root}/spool
log-level-console=warn
log-level-file=off
start-fast=y

[bench]
pg1-path={datadir}
pg1-port={port}
pg1-socket-path={socket}
pg1-user={user}
"""


@dataclass
class Timings:
    """One contender's base backup and recovery times."""

    backup: float = 0.0
    recoveries: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        """Backup plus the median recovery."""
        return self.backup + statistics.median(self.recoveries)

    def describe(self) -> str:
        """One line."""
        runs = ", ".join(f"{t:.2f}" for t in self.recoveries)
        return (
            f"backup median {self.backup:.2f} s + recovery median of ({runs}) s "
            f"= {self.total:.2f} s"
        )


@dataclass
class Source:
    """A pgbench source archiving each segment to every contender."""

    server: ThrowawayServer
    root: Path
    store: LocalObjectStore
    raw_wal: Path
    archiver: CommandArchiver
    socket: Path  # the server's unix socket directory (pgBackRest connects through it)
    pgbackrest: Path | None = None  # its configuration file

    def close(self) -> None:
        """Stop archiving and the server; remove what lives outside the work directory."""
        self.archiver.stop(timeout=30)
        self.server.remove()
        shutil.rmtree(self.socket, ignore_errors=True)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _sql(server: ThrowawayServer, query: str) -> object:
    with connect(server.target(), autocommit=True) as conn:
        row = conn.execute(query).fetchone()  # queries are constants of this module
    return row[0] if row else None


def _pgbench(server: ThrowawayServer, *args: str) -> None:
    run([server.binaries.tool("pgbench"), *args], timeout=TIMEOUT, env=server.target().libpq_env())


def _pgbackrest(conf: Path, password: str, *args: str) -> None:
    run(
        ["pgbackrest", f"--config={conf}", "--stanza=bench", *args],
        timeout=TIMEOUT,
        env={"PGPASSWORD": password},
    )


def _source(template: ClusterTemplate, root: Path, *, scale: int, pgbackrest: bool) -> Source:
    root.mkdir(parents=True)
    store, raw_wal = LocalObjectStore(root / "store"), root / "raw-wal"
    raw_wal.mkdir()
    raw_wal.chmod(0o777)
    archiver = CommandArchiver(store, spool=root / "spool")
    socket = Path(tempfile.mkdtemp(prefix="pgbr-"))  # short: unix socket paths are limited
    socket.chmod(0o777)
    conf = root / "pgbackrest.conf"
    push = f'pgbackrest --config={shlex.quote(str(conf))} --stanza=bench archive-push "$1"\n'
    # "pgbackrest" in the script's name: pgBackRest checks archive_command mentions it.
    script = root / ("archive-pgbackrest.sh" if pgbackrest else "archive.sh")
    script.write_text(
        _WRAPPER.format(
            raw=shlex.quote(str(raw_wal)),
            pgbackrest=push if pgbackrest else "",
            harness=shlex.quote(str(archiver.script)),
        )
    )
    script.chmod(0o755)
    extra = (
        ("archive_mode", "on"),
        ("archive_command", f"{shlex.quote(str(script))} %p %f"),
        ("unix_socket_directories", str(socket)),
    )
    server = ThrowawayServer(
        template, workdir=root / "source", settings=ServerSettings(extra=extra)
    ).start()
    source = Source(server, root, store, raw_wal, archiver, socket)
    if pgbackrest:
        for sub in ("repo", "log", "lock", "spool"):
            (root / "pgbackrest" / sub).mkdir(parents=True, mode=0o777)
        conf.write_text(
            _PGBACKREST_CONF.format(
                root=root / "pgbackrest",
                datadir=server.datadir,
                port=server.port,
                socket=socket,
                user=SUPERUSER,
            )
        )
        _pgbackrest(conf, template.password, "stanza-create")
        source.pgbackrest = conf
    archiver.start()
    _pgbench(server, "-i", "-s", str(scale), "-q")
    return source


def _window(source: Source, duration: int) -> int:
    """pgbench for ``duration`` s, then the restore point; wait until all archives have it."""
    before = int(str(_sql(source.server, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")))
    _pgbench(source.server, "-n", "-c", "2", "-j", "2", "-T", str(duration))
    _sql(source.server, f"SELECT pg_create_restore_point('{POINT}')::text")
    last = str(_sql(source.server, "SELECT pg_walfile_name(pg_switch_wal())"))
    after = int(str(_sql(source.server, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")))
    wait_until(
        lambda: (source.raw_wal / last).exists() and bool(source.store.list(f"wal/{last}.json")),
        timeout=TIMEOUT,
        interval=0.2,
        what=f"WAL segment {last} in every archive",
    )
    return after - before


def _wait_paused(server: ThrowawayServer) -> None:
    def paused() -> bool:
        if not server.running:
            raise DrillError(f"recovery failed:\n{server.log_tail()}")
        return _sql(server, "SELECT pg_get_wal_replay_pause_state()") == "paused"

    wait_until(paused, timeout=TIMEOUT, interval=0.05, what="recovery to pause at the target")


def _start_recovered(
    template: ClusterTemplate, workdir: Path, started: float, *extra: tuple[str, str]
) -> float:
    """Start a server on the restored ``workdir/data``; seconds from ``started`` to paused.

    The server is removed afterwards, outside the time measured.
    """
    settings = ServerSettings(extra=(("archive_mode", "off"), *extra))
    server = ThrowawayServer(template, workdir=workdir, settings=settings, start_timeout=TIMEOUT)
    try:
        server.start()
        _wait_paused(server)
        return time.perf_counter() - started
    finally:
        server.remove()


def _raw_recover(template: ClusterTemplate, base: Path, wal: Path, workdir: Path) -> float:
    started = time.perf_counter()
    workdir.mkdir(parents=True)
    run(["cp", "-a", base, workdir / "data"], timeout=TIMEOUT)
    (workdir / "data" / "recovery.signal").write_text("")
    return _start_recovered(
        template,
        workdir,
        started,
        ("restore_command", f"cp {shlex.quote(str(wal))}/%f %p"),
        ("recovery_target_name", POINT),
        ("recovery_target_action", "pause"),
    )


def _pgbackrest_recover(template: ClusterTemplate, conf: Path, workdir: Path) -> float:
    started = time.perf_counter()
    (workdir / "data").mkdir(parents=True, mode=0o700)
    args = ["--type=name", f"--target={POINT}", "--target-action=pause"]
    _pgbackrest(conf, template.password, f"--pg1-path={workdir / 'data'}", *args, "restore")
    return _start_recovered(template, workdir, started)


def _harness_recover(template: ClusterTemplate, store: LocalObjectStore, workdir: Path) -> float:
    started = time.perf_counter()
    target = RecoveryTarget("name", POINT)
    result = recover(
        store,
        "base/bench",
        target,
        servers=RecoveryServers(template),
        workdir=workdir,
        action="pause",
    )
    seconds = time.perf_counter() - started
    result.server.remove()
    return seconds


def _compare(
    template: ClusterTemplate, root: Path, args: argparse.Namespace, *, pgbackrest: bool
) -> tuple[Timings, Timings, int, Source]:
    """Harness against raw (or pgBackRest) on one source; the source is left running."""
    source = _source(template, root, scale=args.scale, pgbackrest=pgbackrest)
    server, work, raw_base = source.server, root / "work", root / "raw-base"
    ours, theirs = Timings(), Timings()
    conf = source.pgbackrest

    def back_up_ours() -> None:
        shutil.rmtree(work, ignore_errors=True)
        take_base_backup(
            server.target(), server.binaries, source.store, prefix="base/bench", workdir=work
        )

    def back_up_theirs() -> None:
        if conf is not None:
            _pgbackrest(conf, template.password, "--type=full", "backup")
            return
        shutil.rmtree(raw_base, ignore_errors=True)
        tool = server.binaries.tool("pg_basebackup")
        run(
            [tool, "-D", raw_base, "-Fp", "-X", "none", "-c", "fast", "--no-sync"],
            timeout=TIMEOUT,
            env=server.target().libpq_env(),
        )

    # Backups are taken RUNS times each (alternating), the last ones are recovered.
    ours_backups, theirs_backups = [], []
    for i in range(args.runs):
        for who in ("ours", "theirs") if i % 2 else ("theirs", "ours"):
            if who == "ours":
                ours_backups.append(_timed(back_up_ours))
            else:
                theirs_backups.append(_timed(back_up_theirs))
    ours.backup = statistics.median(ours_backups)
    theirs.backup = statistics.median(theirs_backups)
    wal_bytes = _window(source, args.duration)

    def recover_theirs(place: Path) -> float:
        if conf is not None:
            return _pgbackrest_recover(template, conf, place)
        return _raw_recover(template, raw_base, source.raw_wal, place)

    for i in range(args.runs):
        # Alternate who goes first: the second of two back-to-back runs finds a warmer cache.
        order = ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours")
        for who in order:
            place = root / f"recovery-{who}-{i}"
            if who == "ours":
                ours.recoveries.append(_harness_recover(template, source.store, place))
            else:
                theirs.recoveries.append(recover_theirs(place))
            shutil.rmtree(place, ignore_errors=True)
    return ours, theirs, wal_bytes, source


def _rpo(template: ClusterTemplate, source: Source, root: Path, seconds: int) -> float:
    """Streaming archive, canary writer every 100 ms plus pgbench, immediate stop, recover."""
    server, store = source.server, LocalObjectStore(root / "rpo-store")
    app = server.target()
    canary.install(app)
    streaming = StreamingArchiver(app, server.binaries, store, spool=root / "rpo-spool").start()
    take_base_backup(app, server.binaries, store, prefix="base/rpo", workdir=root / "rpo-bb")
    writer = ContinuousWriter(app, interval=0.1).start()
    load = spawn(
        [server.binaries.tool("pgbench"), "-n", "-c", "2", "-T", str(seconds * 3)],
        log_path=root / "rpo-pgbench.log",
        env=app.libpq_env(),
    )
    time.sleep(seconds)  # the window under load; the disaster comes at its end
    if server.pid is None:
        raise DrillError("the source server is not running")
    disaster_at = datetime.now(UTC)
    psutil.Process(server.pid).send_signal(signal.SIGQUIT)  # pg_ctl stop -m immediate
    writer.stop()
    stop_process(load, grace=5)
    streaming.stop(timeout=60)
    server.stop()
    result = recover(
        store,
        "base/rpo",
        RecoveryTarget("latest"),
        servers=RecoveryServers(template),
        workdir=root / "rpo-recovery",
    )
    try:
        newest = canary.newest_write(result.server.target())
    finally:
        result.server.remove()
    if newest is None:
        raise DrillError("no canary row was recovered")
    # A write may commit between reading the clock and the signal landing: that is no loss.
    return max(0.0, (disaster_at - newest.written_at).total_seconds())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--duration", type=int, default=60, help="seconds of pgbench WAL")
    parser.add_argument("--runs", type=int, default=5, help="backups and recoveries each")
    parser.add_argument("--rpo-seconds", type=int, default=10, help="load before the disaster")
    args = parser.parse_args()
    identity = choose_identity()
    with tempfile.TemporaryDirectory(prefix="drill-bench-pitr-") as tmp:
        root = Path(tmp)
        pg17 = ClusterTemplate(find_binaries(), base_dir=root / "tpl", identity=identity)
        ours, raw, wal_bytes, source = _compare(pg17, root / "pg17", args, pgbackrest=False)
        try:
            rpo = _rpo(pg17, source, root / "pg17", args.rpo_seconds)
        finally:
            source.close()
        print(
            f"database: pgbench scale {args.scale} ({args.scale * 100000} accounts rows); "
            f"{args.duration} s of pgbench: {wal_bytes / 2**20:.0f} MiB of WAL"
        )
        print(f"PostgreSQL {pg17.binaries.version} raw    : {raw.describe()}")
        print(f"PostgreSQL {pg17.binaries.version} harness: {ours.describe()}")
        print(f"ratio harness/raw: {ours.total / raw.total:.2f}")
        print(f"ratio harness/pgbackrest: {_versus_pgbackrest(root, identity, args)}")
        print(f"RPO under load: {rpo:.3f} s")
        print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


def _versus_pgbackrest(root: Path, identity: ServerIdentity, args: argparse.Namespace) -> str:
    if shutil.which("pgbackrest") is None:
        return "n/a (pgbackrest is not installed: apt-get install -y pgbackrest)"
    try:
        pg15 = find_binaries(major=15)
    except DrillError as exc:
        return f"n/a (pgBackRest 2.45 supports PostgreSQL <= 15 and none is here: {exc})"
    template = ClusterTemplate(pg15, base_dir=root / "tpl15", identity=identity)
    ours, theirs, _, source = _compare(template, root / "pg15", args, pgbackrest=True)
    source.close()
    print(f"PostgreSQL {pg15.version} pgbackrest: {theirs.describe()}")
    print(f"PostgreSQL {pg15.version} harness   : {ours.describe()}")
    return f"{ours.total / theirs.total:.2f}"


if __name__ == "__main__":
    main()
