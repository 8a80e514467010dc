"""Throwaway PostgreSQL servers: ``initdb`` once into a template, then copy and start.

A :class:`ClusterTemplate` (:mod:`harness.infra.pg_template`) runs ``initdb
--data-checksums`` once per binary directory. Each :class:`ThrowawayServer` copies it,
writes its own ``drill.conf`` (port, no Unix socket, archiving), launches it with ``pg_ctl
start`` on 127.0.0.1 (a new port when the picked one was taken meanwhile), watches
``postmaster.pid`` until the server accepts connections, and checks that a login works.
Stopping escalates ``fast`` -> ``immediate`` -> SIGKILL of the postmaster recorded in
``postmaster.pid`` (``pg_ctl`` daemonizes, so the postmaster is not our child); psutil
tells a live postmaster from a pid the system has recycled.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import signal
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
from harness.infra.pg_template import SUPERUSER, ClusterTemplate
from harness.infra.ports import LOOPBACK, free_port, port_taken
from harness.pg.sql import connect
from harness.proc import run, tail
from harness.redact import get_logger
from harness.waiting import wait_until

log = get_logger(__name__)

__all__ = ["SUPERUSER", "ClusterTemplate", "ServerSettings", "ThrowawayServer", "postmaster_of"]

_START_ATTEMPTS = 3
_STOP_TIMEOUT = 15.0
_POLL = 0.005  # seconds between looks at postmaster.pid: reading it costs microseconds
# postmaster.pid's status line (its 8th) once the server accepts connections.
_ACCEPTING = ("ready", "standby")
# A postmaster that gives up says so in its log before it exits.
_GAVE_UP = re.compile(r"^\S.*\b(FATAL|PANIC):", re.MULTILINE)


class _Exited(Exception):
    """The postmaster of this start ended before a login succeeded."""


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
            stop_timeout: seconds each shutdown mode may take before escalating.

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
        except (WaitTimeout, _Exited) as exc:
            self.stop()
            raise self._start_error(str(exc)) from exc
        except ServerStartError:
            self.stop()
            raise
        log.info("server up on %s:%d (%s)", LOOPBACK, self.port, self.binaries.describe())
        return self

    def _launch(self, *, new_port: bool) -> None:
        """One start; :class:`PortTaken` when the server says its port is taken.

        ``pg_ctl start --wait`` looks at the server ten times a second, so a server ready
        in 40 ms is reported after 100. ``pg_ctl`` here only launches (and daemonizes) the
        postmaster; readiness is read from ``postmaster.pid`` every few milliseconds, with
        ``pg_ctl``'s own rules: a pid file written by this start, whose status line says
        the server accepts connections.
        """
        if new_port:
            self.port = self._port_picker()
        (self.datadir / "drill.conf").write_text(
            "\n".join(self.settings.lines(port=self.port)) + "\n"
        )
        self.identity.hand_over(self.datadir / "drill.conf")
        log_mark = _size(self.log_path)
        # pg_ctl compares the pid file's start time (whole seconds) with its own, less 2 s.
        launched = time.time() - 2
        try:
            self._pg_ctl("start", "--no-wait", "--log", self.log_path)
            wait_until(
                lambda: self._accepting(launched, log_mark),
                timeout=self._start_timeout,
                what=f"PostgreSQL in {self.datadir} to accept connections",
                interval=_POLL,
            )
        except (ToolError, ServerStartError, WaitTimeout) as exc:
            taken = port_taken(_read_from(self.log_path, log_mark))
            raise self._start_error(
                f"start failed: {exc}", kind=PortTaken if taken else ServerStartError
            ) from exc
        self._postmaster = postmaster_of(self.datadir)
        self.pid = self._postmaster.pid if self._postmaster else None

    def _accepting(self, launched: float, log_mark: int) -> bool:
        """True once this start's postmaster accepts connections.

        Raises:
            ServerStartError: the postmaster gave up (its log says FATAL or PANIC and no
                postmaster of this start runs).

        """
        status = _pid_file(self.datadir)
        if status is not None and status.started >= launched:
            proc = postmaster_of(self.datadir)
            if proc is not None:
                return status.state in _ACCEPTING
        if _GAVE_UP.search(_read_from(self.log_path, log_mark)):
            raise ServerStartError("the postmaster exited")
        return False

    def stop(self) -> None:
        """Stop the server: ``fast``, then ``immediate``, then SIGKILL. Idempotent.

        The modes are the postmaster's signals (SIGINT, SIGQUIT), sent directly and waited
        for by pid: ``pg_ctl stop`` would do the same but look ten times a second only.
        Only the postmaster that serves this data directory is signalled: a pid in a stale
        ``postmaster.pid`` that the system has since given to another process is left alone.
        """
        proc = self._process()
        if proc is None:
            self.pid = self._postmaster = None
            return
        for mode, sig in (("fast", signal.SIGINT), ("immediate", signal.SIGQUIT)):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
            if _exited(proc, timeout=self._stop_timeout):
                break
            log.warning("PostgreSQL in %s ignored a %s shutdown", self.datadir, mode)
        else:
            log.warning("postmaster %d survived its shutdown signals; killing it", proc.pid)
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
        # A postmaster that accepted connections and then ended (a recovery that failed,
        # a crash at startup) takes no login ever: say so instead of waiting out the start.
        if self.pid is not None and not self.running:
            raise _Exited("the postmaster exited after it began to accept connections")
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


@dataclass(frozen=True)
class _PidFile:
    """What ``postmaster.pid`` says: when the postmaster started, and its status."""

    started: float
    state: str


def _pid_file(datadir: Path) -> _PidFile | None:
    """Read ``postmaster.pid``; None while it is absent or not completely written."""
    try:
        lines = (datadir / "postmaster.pid").read_text().split("\n")
        # Lines: pid, data dir, start time, port, socket dir, listen address, shared
        # memory key, status (written last, when the server is up).
        return _PidFile(started=float(lines[2]), state=lines[7].strip() if len(lines) > 7 else "")
    except (OSError, ValueError, IndexError):
        return None


def alive(proc: psutil.Process) -> bool:
    """Tell whether ``proc`` still runs: not exited, not a zombie, its pid not reused."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _exited(proc: psutil.Process, *, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``proc`` to exit; a zombie counts as exited.

    Not ``psutil.wait``: that waits for the pid to vanish, and a daemonized postmaster's
    zombie lasts until the system's init reaps it, which can take seconds.
    """
    deadline = time.monotonic() + timeout
    while alive(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL)
    return True


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    """What ``path`` gained after its first ``offset`` bytes ("" when unreadable)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
