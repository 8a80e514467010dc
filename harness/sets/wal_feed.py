"""Archived WAL handed to a recovering server while it is still being staged.

Staging every segment before the server starts would put the download, decompression and
checksum of the whole archive window in front of the replay. :class:`WalFeed` stages in
the background instead (in replay order, each file renamed into place once checked) and
gives the server a ``restore_command`` that waits for a file recovery needs until it is
there. A file recovery does not need (the history files PostgreSQL probes for when it picks
a new timeline, the segment after the end) is "not found" at once.

A file that cannot be staged (missing, damaged) must never look like the end of the WAL:
PostgreSQL would end recovery there, short of the target, and a ``latest`` recovery would
promote with data missing. The command then exits with status 127, which PostgreSQL treats
as fatal (it stops instead of ending recovery), and :meth:`WalFeed.error` names the file.
"""

from __future__ import annotations

import os
import shlex
import threading
from pathlib import Path

from harness.errors import DrillError, WalGapError
from harness.redact import get_logger
from harness.sets.wal_archive import WalArchive, stage
from harness.storage.base import ObjectStore

log = get_logger(__name__)

WANTED = ".wanted"
FAILED = ".failed"
_POLL = 0.05

_SCRIPT = """#!/bin/sh
# restore_command of a recovery: hand over a staged WAL file, waiting while it is staged.
# Exit 1 is "not in the archive" (PostgreSQL goes on without it); exit 127 stops recovery.
dir={dir}
if ! grep -qxF "$1" "$dir/{wanted}"; then
    [ -f "$dir/$1" ] && exec cp "$dir/$1" "$2"
    exit 1
fi
tries=0
while [ ! -f "$dir/$1" ]; do
    [ -f "$dir/{failed}" ] && exit 127
    tries=$((tries + 1))
    [ "$tries" -gt {tries} ] && exit 127
    sleep {poll}
done
exec cp "$dir/$1" "$2"
"""


class WalFeed:
    """Stage WAL files in a background thread for a server that replays them meanwhile."""

    def __init__(
        self,
        store: ObjectStore,
        archive: WalArchive,
        names: tuple[str, ...],
        dest: Path,
        *,
        timeout: float,
        jobs: int = 0,
    ) -> None:
        """Describe the feed; :meth:`start` begins staging.

        Args:
            store: the object store holding the archive.
            archive: the archive's sidecars.
            names: every file recovery needs, in replay order.
            dest: the staging directory (the ``restore_command`` script goes beside it).
            timeout: how long the command waits for one file before stopping recovery.
            jobs: parallel downloads (default: one per core, at most four; more only
                compete with the replay for the processor).

        """
        self.dest, self.names = dest, names
        jobs = jobs or min(4, os.cpu_count() or 1)
        self.script = dest.parent / f"{dest.name}-restore.sh"
        self._store, self._archive, self._jobs, self._timeout = store, archive, jobs, timeout
        self._cancel = threading.Event()
        self._error: DrillError | None = None
        self._thread = threading.Thread(target=self._stage, name="wal-feed", daemon=True)

    def start(self) -> WalFeed:
        """Write the wanted list and the command, and start staging."""
        self.dest.mkdir(parents=True, exist_ok=True)
        (self.dest / WANTED).write_text("".join(f"{name}\n" for name in self.names))
        self.script.write_text(
            _SCRIPT.format(
                dir=shlex.quote(str(self.dest)),
                wanted=WANTED,
                failed=FAILED,
                tries=max(1, int(self._timeout / _POLL)),
                poll=_POLL,
            )
        )
        self.script.chmod(0o755)
        self._thread.start()
        return self

    @property
    def restore_command(self) -> str:
        """The ``restore_command`` setting."""
        return f"{shlex.quote(str(self.script))} %f %p"

    def error(self) -> DrillError | None:
        """Why staging failed, or None (so far)."""
        return self._error

    def close(self, *, timeout: float = 60.0) -> None:
        """Stop staging files not yet started and wait (bounded) for the thread."""
        self._cancel.set()
        if self._thread.ident is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("WAL staging into %s did not stop within %g s", self.dest, timeout)

    def _stage(self) -> None:
        try:
            stage(
                self._store,
                self._archive,
                self.names,
                self.dest,
                jobs=self._jobs,
                cancel=self._cancel,
            )
        except DrillError as exc:
            self._fail(exc)
        except Exception as exc:  # a bug or an I/O error: recovery must stop, not go on
            log.exception("WAL staging into %s failed", self.dest)
            self._fail(WalGapError(f"WAL staging failed: {exc}", segment="?"))

    def _fail(self, exc: DrillError) -> None:
        self._error = exc
        (self.dest / FAILED).write_text(str(exc))
