"""The continuous writer: the application keeps committing while a drill backs up and breaks.

:class:`ContinuousWriter` runs a background thread with its own connection that commits one
canary row (:mod:`harness.drill.canary`) every ``interval`` seconds, optionally together with
statements of the application's own in the same transaction. Per commit it records the
row's sequence number, the server's timestamp, and when the commit started and returned on
this machine's monotonic clock (:class:`Commit`): that is what "every commit that returned
before T is present after a recovery to T, none that started after the mistake" needs
(:func:`boundary_checks`). The last committed row bounds the RPO.

It outlives the disaster: a failed write is counted and timed (when writes started failing,
and the last error), never raised into the drill, and the next tick reconnects, so writing
resumes if the database comes back. An error that is not the database's (a bug) ends the
thread and is reported. :meth:`ContinuousWriter.paused` holds it between two commits (to
record a state no concurrent commit blurs); :meth:`ContinuousWriter.stop` joins the thread
with a timeout and reports whether it ended.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import Connection, sql

from harness.config import PgTarget
from harness.drill.canary import CanaryWrite, write_on
from harness.errors import ConfigError, DrillError, ServerError, WaitTimeout
from harness.pg.sql import connect
from harness.redact import get_logger, redact
from harness.verify.checks import CheckResult

log = get_logger(__name__)

INTERVAL = 0.1
STOP_TIMEOUT = 15.0  # above the 10 s connect timeout an attempt may be waiting on
START_TIMEOUT = 15.0
_POLL = 0.05  # how often a writer held by paused() looks whether it should stop


@dataclass(frozen=True)
class Commit:
    """One committed canary row and when its commit started and returned.

    ``started`` and ``finished`` are this machine's ``time.monotonic()``; ``written_at`` is
    the server's clock inside the transaction.
    """

    seq: int
    written_at: datetime
    started: float
    finished: float

    @property
    def write(self) -> CanaryWrite:
        """The row as :mod:`harness.drill.canary` describes it."""
        return CanaryWrite(seq=self.seq, written_at=self.written_at)


@dataclass(frozen=True)
class WriterReport:
    """What a continuous writer did so far.

    Commit times are the server's clock; failure times are this machine's (the server may
    be gone).
    """

    committed: int
    failed: int
    last: CanaryWrite | None  # the last committed write
    failing_since: datetime | None  # first failure of the current run of failures
    last_error: str | None  # the most recent failure, one line, redacted
    crashed: str | None  # an error that was not the database's; the thread ended
    running: bool

    def describe(self) -> str:
        """One line for evidence."""
        parts = [f"{self.committed} writes committed"]
        if self.last is not None:
            parts.append(f"last {self.last.describe()}")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.failing_since is not None:
            parts.append(f"failing since {self.failing_since.isoformat(timespec='milliseconds')}")
        if self.last_error:
            parts.append(f"last error: {self.last_error}")
        if self.crashed:
            parts.append(f"stopped by an error: {self.crashed}")
        return "; ".join(parts)


class ContinuousWriter:
    """Commit a canary row every ``interval`` seconds in a background thread.

    Use as a context manager: entering starts the thread and waits for its first write;
    leaving stops it (a bounded join). :meth:`report` and :meth:`commits` may be read at
    any time.
    """

    def __init__(
        self,
        target: PgTarget,
        *,
        interval: float = INTERVAL,
        note: str = "continuous",
        also: Sequence[sql.SQL | sql.Composed] = (),
        stop_timeout: float = STOP_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        """Prepare a writer (nothing runs until :meth:`start`).

        Args:
            target: the database holding ``drill.canary`` (see :func:`canary.install`).
            interval: seconds between the end of one write and the start of the next.
            note: the ``note`` of every row written.
            also: statements of the application run in the same transaction as each
                canary row (its own tables, sequences ...).
            stop_timeout: how long :meth:`stop` waits for the thread to end.
            start_timeout: how long :meth:`start` waits for the first write.

        Raises:
            ConfigError: an interval or timeout is not a positive number.

        """
        for name, value in (
            ("interval", interval),
            ("stop_timeout", stop_timeout),
            ("start_timeout", start_timeout),
        ):
            if not value > 0:
                raise ConfigError(
                    f"writer {name} must be a positive number of seconds, not {value}"
                )
        self._target = target
        self._interval = interval
        self._note = note
        self._also = tuple(also)
        self._stop_timeout = stop_timeout
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # Held for each write attempt: paused() takes it to keep the writer between commits.
        self._gate = threading.Lock()
        self._stopping = threading.Event()
        self._attempted = threading.Event()
        self._failing = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"canary-writer {target.display()}", daemon=True
        )
        self._commits: list[Commit] = []
        self._failed = 0
        self._failing_since: datetime | None = None
        self._last_error: str | None = None
        self._crashed: str | None = None

    @property
    def interval(self) -> float:
        """Seconds between writes."""
        return self._interval

    def start(self) -> Self:
        """Start writing and wait for the first write.

        Raises:
            ServerError: the first write failed (the canary table is missing, the server is
                unreachable ...); the thread is stopped again.
            DrillError: the writer was started twice.

        """
        if self._thread.ident is not None:
            raise DrillError("a continuous writer can be started only once; make a new one")
        self._thread.start()
        self._attempted.wait(self._start_timeout)
        first = self.report()
        if first.committed == 0:
            self.stop()
            reason = first.crashed or first.last_error or f"no write in {self._start_timeout} s"
            raise ServerError(
                f"the continuous writer cannot write to drill.canary on "
                f"{self._target.display()}: {reason}; is the canary table installed "
                "(canary.install) and the server up?"
            )
        return self

    def report(self) -> WriterReport:
        """What the writer did so far (safe to call while it runs)."""
        with self._lock:
            return WriterReport(
                committed=len(self._commits),
                failed=self._failed,
                last=self._commits[-1].write if self._commits else None,
                failing_since=self._failing_since,
                last_error=self._last_error,
                crashed=self._crashed,
                running=self._thread.is_alive(),
            )

    def commits(self) -> tuple[Commit, ...]:
        """Every commit so far, oldest first."""
        with self._lock:
            return tuple(self._commits)

    def last_before(self, moment: float) -> Commit | None:
        """The newest commit that returned before ``moment`` (``time.monotonic()``)."""
        done = [c for c in self.commits() if c.finished < moment]
        return done[-1] if done else None

    def wait_for_commits(self, count: int, *, timeout: float = 30.0) -> WriterReport:
        """Wait until ``count`` more commits than now were made; report.

        Raises:
            WaitTimeout: they were not made within ``timeout`` seconds (the report of
                what was made is in the message).

        """
        with self._changed:
            wanted = len(self._commits) + count
            done = self._changed.wait_for(
                lambda: len(self._commits) >= wanted or self._crashed is not None, timeout
            )
        report = self.report()
        if not done or report.committed < wanted:
            raise WaitTimeout(
                f"the continuous writer made {report.committed} of {wanted} commits within "
                f"{timeout:g} s: {report.describe()}"
            )
        return report

    def wait_until_failing(self, timeout: float) -> WriterReport:
        """Wait at most ``timeout`` seconds for a write to fail (after a disaster); report.

        The report's ``failing_since`` is None when writes still succeed.
        """
        self._failing.wait(timeout)
        return self.report()

    @contextlib.contextmanager
    def paused(self, *, timeout: float = STOP_TIMEOUT) -> Iterator[WriterReport]:
        """Hold the writer between two commits for the enclosed block; yield its report.

        Raises:
            WaitTimeout: the write in flight did not finish within ``timeout`` seconds.

        """
        if not self._gate.acquire(timeout=timeout):
            raise WaitTimeout(
                f"the continuous writer to {self._target.display()} did not finish its "
                f"write in flight within {timeout:g} s, so it cannot be paused"
            )
        try:
            yield self.report()
        finally:
            self._gate.release()

    def stop(self) -> WriterReport:
        """Stop writing; wait at most ``stop_timeout`` for the thread; report.

        A thread still running after the timeout (a write hanging on a server that stopped
        answering) is left behind as a daemon and reported with ``running=True``.
        """
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(self._stop_timeout)
        report = self.report()
        if report.running:
            log.warning(
                "the continuous writer to %s did not stop within %.0f s",
                self._target.display(),
                self._stop_timeout,
            )
        return report

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _loop(self) -> None:
        conn: Connection[Any] | None = None
        try:
            while True:
                try:
                    if conn is None:
                        conn = connect(self._target, autocommit=True)
                    if not self._write(conn):
                        return  # asked to stop while paused
                except (psycopg.Error, DrillError) as exc:
                    # The database failing is what a disaster looks like: record, go on.
                    self._failure(exc)
                    _close(conn)
                    conn = None
                self._attempted.set()
                if self._stopping.wait(self._interval):
                    return
        except Exception as exc:  # a bug, not the database: end the thread, keep the cause
            with self._changed:
                self._crashed = _one_line(exc)
                self._changed.notify_all()
            log.exception("the continuous writer to %s stopped", self._target.display())
        finally:
            self._attempted.set()
            _close(conn)

    def _write(self, conn: Connection[Any]) -> bool:
        """One commit, between pauses; False when asked to stop while waiting for one."""
        while not self._gate.acquire(timeout=_POLL):
            if self._stopping.is_set():
                return False
        try:
            started = time.monotonic()
            if self._also:
                with conn.transaction():
                    for statement in self._also:
                        conn.execute(statement)
                    written = write_on(conn, self._note)
            else:
                written = write_on(conn, self._note)
            finished = time.monotonic()
        finally:
            self._gate.release()
        with self._changed:
            self._commits.append(Commit(written.seq, written.written_at, started, finished))
            self._failing_since = None
            self._failing.clear()
            self._changed.notify_all()
        return True

    def _failure(self, exc: BaseException) -> None:
        message = _one_line(exc)
        with self._lock:
            first = self._failing_since is None
            self._failed += 1
            self._last_error = message
            if first:
                self._failing_since = datetime.now(UTC)
            self._failing.set()
        if first:
            log.info("writes to %s started failing: %s", self._target.display(), message)


def boundary_checks(
    commits: Sequence[Commit], present: set[int], *, before: float, after: float
) -> list[CheckResult]:
    """After a recovery to just before a mistake: every commit before it, none after.

    A commit that returned before ``before`` must be present; one that started after
    ``after`` must not be; commits racing either boundary may go either way.

    Args:
        commits: the writer's commits (:meth:`ContinuousWriter.commits`).
        present: canary sequence numbers in the recovered database
            (:func:`harness.drill.canary.present_seqs`).
        before: monotonic time the recovery point was taken (just before the mistake).
        after: monotonic time the mistake's commit returned.

    """
    lost = sorted(c.seq for c in commits if c.finished < before and c.seq not in present)
    extra = sorted(c.seq for c in commits if c.started > after and c.seq in present)
    kept = sum(1 for c in commits if c.finished < before)
    return [
        CheckResult(
            "commits before the recovery point present",
            ok=not lost,
            critical=True,
            detail=f"{kept - len(lost)} of {kept} present"
            + (f"; missing #{lost[:10]}" if lost else ""),
        ),
        CheckResult(
            "no commit after the mistake present",
            ok=not extra,
            critical=True,
            detail="none present" if not extra else f"present #{extra[:10]}",
        ),
    ]


def _one_line(exc: BaseException) -> str:
    lines = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _close(conn: Connection[Any] | None) -> None:
    if conn is not None:
        # A broken connection may fail to close; there is nothing left to release then.
        with contextlib.suppress(psycopg.Error):
            conn.close()
