"""Continuous WAL archiving from a server into an object store, two ways.

- :class:`StreamingArchiver`: ``pg_receivewal --synchronous`` over a replication slot into a
  local spool; every finished segment is uploaded; on shutdown the partial tail is uploaded
  too, so a recovery loses (almost) nothing that was committed (near-zero RPO).
- :class:`CommandArchiver`: the server's own ``archive_command`` runs a small script the
  harness writes (copy to a temp name, rename into the spool); ``archive_timeout`` bounds the
  RPO. Its :meth:`CommandArchiver.settings` go into the server's ``ServerSettings.extra``.

Both share a :class:`WalUploader` thread that pushes finished files with bounded retries;
:meth:`WalUploader.close` never waits past its timeout, even when the store is gone.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from harness.config import PgTarget
from harness.errors import BackupError, DrillError, StorageError, WaitTimeout
from harness.pg.binaries import PgBinaries
from harness.pg.sql import connect
from harness.pg.wal import is_history_name, is_segment_name
from harness.proc import Process, spawn, stop_process, tail
from harness.redact import get_logger
from harness.sets.wal_archive import PARTIAL, upload_wal_file
from harness.storage.base import ObjectStore
from harness.waiting import wait_until

log = get_logger(__name__)

DEFAULT_SLOT = "drill_wal_archive"


@dataclass(frozen=True)
class UploadReport:
    """What an uploader did by the time it was closed."""

    uploaded: tuple[str, ...]
    pending: tuple[str, ...]
    errors: tuple[str, ...]
    raw_bytes: int
    stored_bytes: int
    max_lag_seconds: float


class WalUploader:
    """A thread that uploads finished WAL files appearing in a spool directory."""

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        spool: Path,
        *,
        codec: str = "gzip",
        interval: float = 0.2,
        attempts: int = 4,
    ) -> None:
        """Watch ``spool``; nothing runs until :meth:`start`.

        Args:
            store: where the archive lives.
            prefix: the archive's key prefix.
            spool: the local directory finished WAL files appear in.
            codec: compression codec for uploads.
            interval: seconds between scans of the spool.
            attempts: tries per object before the file is left for the next scan.

        """
        self.store, self.prefix, self.spool = store, prefix, spool
        self.codec, self.interval, self.attempts = codec, interval, attempts
        self._uploaded: list[str] = []
        self._errors: list[str] = []
        self._raw = self._stored = 0
        self._max_lag = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"wal-upload-{prefix}", daemon=True)

    def start(self) -> WalUploader:
        """Start the upload thread."""
        self.spool.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def ready(self) -> list[Path]:
        """Finished files in the spool, oldest name first (history files first)."""
        found = [
            p for p in self.spool.iterdir() if is_segment_name(p.name) or is_history_name(p.name)
        ]
        return sorted(found, key=lambda p: (not is_history_name(p.name), p.name))

    def upload_ready(self, *, deadline: float | None = None) -> int:
        """Upload every finished file now; return how many went up.

        Args:
            deadline: a ``time.monotonic()`` value after which no new upload starts.

        """
        done = 0
        with self._lock:  # the thread and a final flush must not upload the same file twice
            for path in self.ready():
                if deadline is not None and time.monotonic() > deadline:
                    break
                if self._push(path, path.name):
                    done += 1
        return done

    def _push(self, path: Path, name: str) -> bool:
        try:
            appeared = path.stat().st_mtime
            entry = upload_wal_file(
                self.store, self.prefix, path, name=name, codec=self.codec, attempts=self.attempts
            )
        except (StorageError, OSError) as exc:
            message = f"{name}: {exc}"
            if message not in self._errors:
                self._errors.append(message)
                log.warning("WAL upload of %s failed (will retry): %s", name, exc)
            return False
        self._max_lag = max(self._max_lag, time.time() - appeared)
        self._uploaded.append(name)
        self._raw += entry.size
        self._stored += entry.stored_size
        if not name.endswith(PARTIAL):
            # The spool is a buffer, not the archive: once stored, the local copy goes.
            path.unlink(missing_ok=True)
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.upload_ready()
            except Exception:  # a scan failure must not kill archiving for good
                log.exception("WAL upload scan of %s failed", self.spool)

    def close(self, *, timeout: float = 30.0, include_partial: bool = False) -> UploadReport:
        """Stop the thread after a last upload pass; never wait longer than ``timeout``.

        Args:
            timeout: seconds for the final pass and the thread to finish.
            include_partial: also upload a ``*.partial`` tail segment (streaming).

        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive():
            self.upload_ready(deadline=deadline)
            if include_partial:
                with self._lock:
                    for path in sorted(self.spool.glob("*" + PARTIAL)):
                        if time.monotonic() < deadline:
                            self._push(path, path.name)
        pending = tuple(p.name for p in self.ready())
        if pending:
            log.warning(
                "%d WAL files were not archived before the %g s shutdown limit",
                len(pending),
                timeout,
            )
        return UploadReport(
            uploaded=tuple(self._uploaded),
            pending=pending,
            errors=tuple(self._errors),
            raw_bytes=self._raw,
            stored_bytes=self._stored,
            max_lag_seconds=self._max_lag,
        )


class StreamingArchiver:
    """``pg_receivewal`` into a spool, and an uploader from the spool into the store."""

    def __init__(
        self,
        target: PgTarget,
        binaries: PgBinaries,
        store: ObjectStore,
        *,
        spool: Path,
        prefix: str = "wal",
        slot: str = DEFAULT_SLOT,
        codec: str = "gzip",
    ) -> None:
        """Describe the archiver; :meth:`start` begins streaming.

        Args:
            target: the server to stream from (a user with REPLICATION).
            binaries: client tools matching the server's major version.
            store: where the archive lives.
            spool: local directory for ``pg_receivewal``.
            prefix: the archive's key prefix.
            slot: the physical replication slot that keeps WAL until it was received.
            codec: compression codec for uploads.

        """
        self.target, self.binaries, self.spool, self.slot = target, binaries, spool, slot
        self.uploader = WalUploader(store, prefix, spool, codec=codec)
        self.log_path = spool.parent / f"{spool.name}-pg_receivewal.log"
        self._proc: Process | None = None

    def start(self, *, timeout: float = 30.0) -> StreamingArchiver:
        """Create the slot, start ``pg_receivewal`` and wait until it streams.

        Raises:
            BackupError: ``pg_receivewal`` did not connect; the message ends with its log.

        """
        self.spool.mkdir(parents=True, exist_ok=True)
        with connect(self.target, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
            ).fetchone()
            if exists is None:
                conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (self.slot,))
        argv: list[str | Path] = [
            self.binaries.tool("pg_receivewal"),
            "--directory",
            self.spool,
            "--slot",
            self.slot,
            "--synchronous",  # flush every write: what the server sent is on disk here
            "--no-loop",  # the primary gone means the disaster happened: stop, keep the tail
            "--status-interval=1",
        ]
        self._proc = spawn(argv, log_path=self.log_path, env=self.target.libpq_env())
        try:
            wait_until(
                self._streaming,
                timeout=timeout,
                what="pg_receivewal to start streaming",
                transient=(DrillError,),
            )
        except WaitTimeout as exc:
            self.stop(timeout=5)
            raise BackupError(
                f"pg_receivewal did not start streaming: {exc}\n{self._log_tail()}",
                phase="wal-stream",
            ) from exc
        self.uploader.start()
        return self

    def _streaming(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise WaitTimeout(f"pg_receivewal exited with status {self._proc.returncode}")
        with connect(self.target) as conn:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
            ).fetchone()
        return bool(row and row[0])

    def _log_tail(self) -> str:
        try:
            return tail(self.log_path.read_text(errors="replace"), 10)
        except OSError:
            return ""

    def _catch_up(self, *, timeout: float) -> None:
        """While the server answers, wait until the receiver flushed all it has written."""

        def caught_up() -> bool:
            if self._proc is None or self._proc.poll() is not None:
                return True  # the receiver is gone (the server went down): nothing to wait for
            with connect(self.target) as conn:
                row = conn.execute(
                    "SELECT r.flush_lsn >= pg_current_wal_lsn() FROM pg_stat_replication r "
                    "JOIN pg_replication_slots s ON s.active_pid = r.pid "
                    "WHERE s.slot_name = %s",
                    (self.slot,),
                ).fetchone()
            return bool(row and row[0])

        try:
            wait_until(caught_up, timeout=timeout, what="pg_receivewal to catch up")
        except DrillError as exc:  # best effort: the server may be the disaster's victim
            log.info("pg_receivewal did not confirm catching up: %s", exc)

    def stop(self, *, timeout: float = 30.0, drop_slot: bool = True) -> UploadReport:
        """Stop streaming, upload what is left (the partial tail too), drop the slot.

        While the server still answers, the receiver first catches up with everything the
        server has written (bounded by ``timeout``).

        Args:
            timeout: seconds for the final uploads.
            drop_slot: drop the replication slot (best effort; the server may be gone).

        """
        if self._proc is not None:
            self._catch_up(timeout=min(10.0, timeout))
            stop_process(self._proc, grace=5)
        report = self.uploader.close(timeout=timeout, include_partial=True)
        if drop_slot:
            try:
                with connect(self.target, autocommit=True) as conn:
                    conn.execute(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                        "WHERE slot_name = %s AND NOT active",
                        (self.slot,),
                    )
            except DrillError as exc:  # the server may be the disaster's victim
                log.info("replication slot %s not dropped: %s", self.slot, exc)
        return report


_SCRIPT = """#!/bin/sh
# archive_command: copy a WAL file into the spool under a temp name, then rename it, so the
# uploader never sees half a file. An identical copy already there counts as archived.
set -eu
spool={spool}
dest="$spool/$2"
if [ -f "$dest" ]; then cmp -s "$1" "$dest"; exit $?; fi
cp "$1" "$spool/.tmp-$2.$$"
mv "$spool/.tmp-$2.$$" "$dest"
"""


class CommandArchiver:
    """The server's ``archive_command`` into a spool, and an uploader into the store."""

    def __init__(
        self, store: ObjectStore, *, spool: Path, prefix: str = "wal", codec: str = "gzip"
    ) -> None:
        """Write the archive script beside ``spool``; :meth:`start` starts the uploader.

        Args:
            store: where the archive lives.
            spool: local directory the script copies into.
            prefix: the archive's key prefix.
            codec: compression codec for uploads.

        """
        self.spool = spool
        spool.mkdir(parents=True, exist_ok=True)
        # The server may run as another uid (system-user mode): it must write the spool.
        spool.chmod(0o777)
        self.script = spool.parent / f"{spool.name}-archive.sh"
        self.script.write_text(_SCRIPT.format(spool=shlex.quote(str(spool))))
        self.script.chmod(0o755)
        self.uploader = WalUploader(store, prefix, spool, codec=codec)

    def settings(self, *, archive_timeout: int = 1) -> tuple[tuple[str, str], ...]:
        """Server settings (for ``ServerSettings.extra``) that archive through the script."""
        return (
            ("archive_mode", "on"),
            ("archive_command", f"{shlex.quote(str(self.script))} %p %f"),
            ("archive_timeout", str(archive_timeout)),
        )

    def start(self) -> CommandArchiver:
        """Start uploading what the server archives."""
        self.uploader.start()
        return self

    def stop(self, *, timeout: float = 30.0) -> UploadReport:
        """Upload what the spool holds and stop; never waits past ``timeout``."""
        return self.uploader.close(timeout=timeout)


def switch_wal(target: PgTarget) -> str:
    """Close the current segment so the server archives it; return the switch LSN."""
    with connect(target, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT pg_switch_wal()::text")).fetchone()
    return str(row[0]) if row else ""
