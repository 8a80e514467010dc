"""Throwaway PostgreSQL servers: ``initdb`` once into a template, then copy and start.

A :class:`ClusterTemplate` runs ``initdb --data-checksums`` once per binary directory. Each
:class:`ThrowawayServer` copies it, writes its own ``drill.conf`` (port, no Unix socket,
archiving), starts with ``pg_ctl start -w`` on 127.0.0.1 (a new port when the picked one
was taken meanwhile) and waits until a login works. Stopping escalates ``fast`` ->
``immediate`` -> SIGKILL of the postmaster recorded in ``postmaster.pid`` (``pg_ctl``
daemonizes, so the postmaster is not our child); psutil tells a live postmaster from a pid
the system has recycled.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import psutil
import psycopg
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from harness.config import PgTarget
from harness.errors import ConnectError, PortTaken, ServerStartError, ToolError, WaitTimeout
from harness.infra.lifecycle import Throwaway
from harness.infra.ports import LOOPBACK, free_port, port_taken
from harness.infra.privilege import ServerIdentity
from harness.pg.binaries import PgBinaries
from harness.pg.sql import connect
from harness.proc import run, tail
from harness.redact import get_logger, register_secret
from harness.waiting import wait_until

log = get_logger(__name__)

SUPERUSER = "postgres"
_START_ATTEMPTS = 3
_STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ServerSettings:
    """Per-server configuration on top of the template's defaults."""

    wal_level: str = "replica"
    archive_dir: Path | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def lines(self, *, port: int) -> list[str]:
        """Render the settings as ``postgresql.conf`` lines."""
        values: list[tuple[str, str]] = [
            ("listen_addresses", LOOPBACK),
            ("port", str(port)),
            # TCP only: a socket path under a deep temp dir exceeds the 107-byte limit of
            # Unix sockets, and every client here connects over 127.0.0.1 anyway.
            ("unix_socket_directories", ""),
            ("wal_level", self.wal_level),
        ]
        if self.archive_dir is not None:
            target = shlex.quote(str(self.archive_dir)) + "/%f"
            values += [
                ("archive_mode", "on"),
                ("archive_command", f"test ! -f {target} && cp %p {target}"),
            ]
        values += list(self.extra)
        return [f"{name} = {_conf_quote(value)}" for name, value in values]


class ClusterTemplate:
    """An initialised data directory that servers are copied from (``initdb`` runs once)."""

    def __init__(self, binaries: PgBinaries, *, base_dir: Path, identity: ServerIdentity) -> None:
        """Prepare (lazily) a template for ``binaries`` under ``base_dir``."""
        self.binaries = binaries
        self.identity = identity
        self.path = base_dir / f"template-pg{binaries.major}"
        self.password = secrets.token_urlsafe(18)
        register_secret(self.password)
        self._lock = threading.Lock()
        self._ready = False

    def ensure(self) -> Path:
        """Run ``initdb`` on first use; return the template data directory.

        Raises:
            ServerStartError: ``initdb`` failed; the message carries its output.

        """
        with self._lock:
            if not self._ready:
                self._initdb()
                self._ready = True
        return self.path

    def _initdb(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pwfile = self.path.parent / f".pw-{self.path.name}"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self.identity.hand_over(pwfile)
        self.identity.hand_over(self.path.parent)
        argv = self.identity.wrap(
            [
                self.binaries.tool("initdb"),
                "--pgdata",
                self.path,
                "--username",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--data-checksums",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # a throwaway template: durability of initdb's own writes is moot
            ]
        )
        started = time.monotonic()
        try:
            run(argv, timeout=120, user=self.identity.run_user)
        except ToolError as exc:
            raise ServerStartError(f"initdb failed for {self.binaries.describe()}: {exc}") from exc
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.path / "postgresql.conf").open("a") as conf:
            conf.write("\n# throwaway-server settings written per clone\ninclude 'drill.conf'\n")
        log.info(
            "initialised template %s in %.2f s (%s)",
            self.path,
            time.monotonic() - started,
            self.binaries.describe(),
        )

    def clone_into(self, datadir: Path) -> None:
        """Copy the template into ``datadir`` (which must not exist)."""
        source = self.ensure()
        shutil.copytree(source, datadir, symlinks=True)
        datadir.chmod(0o700)


class ThrowawayServer(Throwaway):
    """One PostgreSQL server on 127.0.0.1, copied from a template, removed after use."""

    def __init__(
        self,
        template: ClusterTemplate,
        *,
        workdir: Path,
        settings: ServerSettings | None = None,
        port_picker: Callable[[], int] = free_port,
        start_timeout: float = 60.0,
        stop_timeout: float = _STOP_TIMEOUT,
    ) -> None:
        """Describe a server; nothing runs until :meth:`start`.

        Args:
            template: the initialised cluster to copy.
            workdir: a directory of its own (data dir and log go inside).
            settings: WAL level, archiving and extra settings.
            port_picker: returns a candidate port; retried when the port turns out taken.
            start_timeout: seconds to wait for the server to accept logins.
            stop_timeout: seconds each ``pg_ctl stop`` mode may take before escalating.

        """
        self.template = template
        self.binaries = template.binaries
        self.identity = template.identity
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.log_path = workdir / "server.log"
        self.settings = settings or ServerSettings()
        self.port = 0
        self.pid: int | None = None
        self._postmaster: psutil.Process | None = None
        self._port_picker = port_picker
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Create the data directory from the template (first time) and start the server.

        Raises:
            ServerStartError: the server did not come up; the message ends with the tail
                of its log.

        """
        if not self.datadir.exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.template.clone_into(self.datadir)
        if self.settings.archive_dir is not None:
            self.settings.archive_dir.mkdir(parents=True, exist_ok=True)
            self.identity.hand_over(self.settings.archive_dir)
        self.identity.hand_over(self.workdir)
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(_START_ATTEMPTS),
                retry=retry_if_exception_type(PortTaken),
                before_sleep=lambda _: log.info(
                    "port %d was taken before the server bound it; retrying", self.port
                ),
                reraise=True,
            ):
                with attempt:
                    # A restart keeps its port (clients hold the address); a first start,
                    # or a retry after the port was taken meanwhile, picks a new one.
                    self._launch(new_port=attempt.retry_state.attempt_number > 1 or not self.port)
            wait_until(
                self._can_login,
                timeout=self._start_timeout,
                what=f"PostgreSQL on port {self.port} to accept logins",
                # connect() reports refusals as ConnectError; psycopg.Error covers the rest
                # (a login during crash recovery: "the database system is starting up").
                transient=(ConnectError, psycopg.Error),
            )
        except WaitTimeout as exc:
            self.stop()
            raise self._start_error(str(exc)) from exc
        except ServerStartError:
            self.stop()
            raise
        log.info("server up on %s:%d (%s)", LOOPBACK, self.port, self.binaries.describe())
        return self

    def _launch(self, *, new_port: bool) -> None:
        """One ``pg_ctl start``; :class:`PortTaken` when the server says its port is taken."""
        if new_port:
            self.port = self._port_picker()
        (self.datadir / "drill.conf").write_text(
            "\n".join(self.settings.lines(port=self.port)) + "\n"
        )
        self.identity.hand_over(self.datadir / "drill.conf")
        log_mark = len(self.log_text())
        try:
            self._pg_ctl(
                "start", "--wait", f"--timeout={int(self._start_timeout)}", "--log", self.log_path
            )
        except ToolError as exc:
            taken = port_taken(self.log_text()[log_mark:])
            raise self._start_error(
                f"pg_ctl start failed: {exc}", kind=PortTaken if taken else ServerStartError
            ) from exc
        self._postmaster = postmaster_of(self.datadir)
        self.pid = self._postmaster.pid if self._postmaster else None

    def stop(self) -> None:
        """Stop the server: ``fast``, then ``immediate``, then SIGKILL. Idempotent.

        Only the postmaster that serves this data directory is signalled: a pid in a stale
        ``postmaster.pid`` that the system has since given to another process is left alone.
        """
        proc = self._process()
        if proc is None:
            self.pid = self._postmaster = None
            return
        for mode in ("fast", "immediate"):
            try:
                self._pg_ctl(
                    "stop",
                    "--wait",
                    f"--mode={mode}",
                    f"--timeout={max(1, int(self._stop_timeout))}",
                )
            except ToolError as exc:
                log.warning("pg_ctl stop -m %s failed for %s: %s", mode, self.datadir, exc)
            if not alive(proc):
                break
        else:
            log.warning("postmaster %d survived pg_ctl stop; killing it", proc.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
            wait_until(lambda: not alive(proc), timeout=10, what=f"pid {proc.pid} to exit")
        self.pid = self._postmaster = None

    def remove(self) -> None:
        """Delete the server's working directory (stop it first)."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- facts ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while this data directory's postmaster runs."""
        return self._process() is not None

    def target(self, dbname: str = "postgres") -> PgTarget:
        """Superuser connection details for database ``dbname`` on this server."""
        return PgTarget(
            host=LOOPBACK,
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            password=self.template.password,
            destructive_ok=True,
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server log, redacted."""
        return tail(self.log_text(), lines)

    # -- internals ------------------------------------------------------------------------

    def _pg_ctl(self, *args: str | Path) -> None:
        argv = self.identity.wrap([self.binaries.tool("pg_ctl"), "--pgdata", self.datadir, *args])
        run(argv, timeout=self._start_timeout + 30, user=self.identity.run_user)

    def _can_login(self) -> bool:
        with connect(self.target()) as conn:
            conn.execute("SELECT 1")
        return True

    def _process(self) -> psutil.Process | None:
        if self._postmaster is not None and alive(self._postmaster):
            return self._postmaster
        # Started by another object, restarted, or gone: ask the data directory.
        self._postmaster = postmaster_of(self.datadir)
        return self._postmaster

    def _start_error(
        self, message: str, *, kind: type[ServerStartError] = ServerStartError
    ) -> ServerStartError:
        error = kind(
            f"PostgreSQL ({self.binaries.describe()}) did not start in {self.workdir}: "
            f"{message}\n--- last lines of {self.log_path} ---\n{self.log_tail()}"
        )
        error.add_note(f"server log: {self.log_path}")
        return error


def postmaster_of(datadir: Path) -> psutil.Process | None:
    """The running postmaster of ``datadir`` (from its ``postmaster.pid``), or None.

    A pid file left by a crash may name a pid the system has since given to an unrelated
    process; the postmaster works in its data directory, so a process elsewhere is not it.
    """
    try:
        pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        proc = psutil.Process(pid)
        if not alive(proc):
            return None
        serves = Path(proc.cwd()).resolve() == datadir.resolve()
    except (OSError, ValueError, psutil.NoSuchProcess):
        return None
    except psutil.AccessDenied:
        # A process we may not inspect (another user's, when not root): trust the pid
        # file, as pg_ctl itself does.
        return proc
    return proc if serves else None


def alive(proc: psutil.Process) -> bool:
    """Tell whether ``proc`` still runs: not exited, not a zombie, its pid not reused."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
