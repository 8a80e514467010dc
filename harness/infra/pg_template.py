"""Template clusters: ``initdb`` once, then a copy per throwaway server.

Copying a fresh cluster is about a thousand small files; creating them, not their 40 MB,
is what costs (0.1-0.3 s here). A template asked to keep a *spare* copies the next clone
in a background thread while the current server runs, so the next server only renames a
ready directory into place (same filesystem) instead of copying while someone waits.
"""

from __future__ import annotations

import itertools
import secrets
import shutil
import threading
import time
from pathlib import Path

from harness.errors import ServerStartError, ToolError
from harness.infra.privilege import ServerIdentity
from harness.pg.binaries import PgBinaries
from harness.proc import run
from harness.redact import get_logger, register_secret

log = get_logger(__name__)

SUPERUSER = "postgres"


class ClusterTemplate:
    """An initialised data directory that servers are copied from (``initdb`` runs once)."""

    def __init__(
        self,
        binaries: PgBinaries,
        *,
        base_dir: Path,
        identity: ServerIdentity,
        spare: bool = False,
    ) -> None:
        """Prepare (lazily) a template for ``binaries`` under ``base_dir``.

        Args:
            binaries: the PostgreSQL binaries to initialise with.
            base_dir: where the template (and its spare copy) live.
            identity: how the server processes run.
            spare: keep one copy ready in the background for the next clone; call
                :meth:`close` when done so that no copy is left running.

        """
        self.binaries = binaries
        self.identity = identity
        self.path = base_dir / f"template-pg{binaries.major}"
        self.password = secrets.token_urlsafe(18)
        register_secret(self.password)
        self._lock = threading.Lock()
        self._ready = False
        self._keep_spare = spare
        self._spare_lock = threading.Lock()
        self._spare: Path | None = None
        self._filler: threading.Thread | None = None
        self._closed = False
        self._names = itertools.count(1)

    def ensure(self) -> Path:
        """Run ``initdb`` on first use; return the template data directory.

        Raises:
            ServerStartError: ``initdb`` failed; the message carries its output.

        """
        with self._lock:
            if not self._ready:
                self._initdb()
                self._ready = True
                self._refill()
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
        _drop_optional_forks(self.path)
        log.info(
            "initialised template %s in %.2f s (%s)",
            self.path,
            time.monotonic() - started,
            self.binaries.describe(),
        )

    def clone_into(self, datadir: Path) -> None:
        """Put a copy of the template at ``datadir`` (which must not exist).

        The spare copy is renamed into place when there is one (waiting for one being made
        costs no more than copying anew); otherwise the template is copied now.
        """
        source = self.ensure()
        spare = self._claim_spare()
        if spare is not None:
            try:
                spare.rename(datadir)
            except OSError:
                # Another filesystem (or a name now taken): copy as if there were no spare.
                shutil.rmtree(spare, ignore_errors=True)
                spare = None
        if spare is None:
            _copy(source, datadir)
        datadir.chmod(0o700)
        self._refill()

    def close(self) -> None:
        """Stop keeping a spare: wait for a copy under way and delete the spare."""
        with self._spare_lock:
            self._closed = True
        spare = self._claim_spare()
        if spare is not None:
            shutil.rmtree(spare, ignore_errors=True)

    def _claim_spare(self) -> Path | None:
        """The finished spare (waiting for one being made), now the caller's, or None."""
        with self._spare_lock:
            filler = self._filler
        if filler is not None:
            filler.join()
        with self._spare_lock:
            spare, self._spare, self._filler = self._spare, None, None
        return spare

    def _refill(self) -> None:
        with self._spare_lock:
            if not self._keep_spare or self._closed or self._filler or self._spare:
                return
            target = self.path.parent / f"{self.path.name}.spare-{next(self._names)}"
            self._filler = threading.Thread(
                target=self._make_spare, args=(target,), name="template-spare", daemon=True
            )
            self._filler.start()

    def _make_spare(self, target: Path) -> None:
        made: Path | None = target
        partial = target.with_name(target.name + ".partial")
        try:
            _copy(self.path, partial)
            partial.rename(target)  # a spare's name means a complete copy
        except OSError as exc:
            # Only a lost head start: the next clone copies for itself.
            log.debug("could not prepare a spare copy of %s: %s", self.path, exc)
            shutil.rmtree(partial, ignore_errors=True)
            made = None
        with self._spare_lock:
            self._spare, self._filler = made, None


def _drop_optional_forks(datadir: Path) -> None:
    """Delete the free-space and visibility maps of the fresh cluster's catalogs.

    A quarter of its files, all optional: a relation without a free-space map appends new
    rows at its end until VACUUM makes one, and one without a visibility map counts no page
    as all-visible until VACUUM sets them. Fewer files, faster copies.
    """
    for folder in ("base", "global"):
        for fork in (
            *datadir.joinpath(folder).rglob("*_fsm"),
            *datadir.joinpath(folder).rglob("*_vm"),
        ):
            fork.unlink()


def _copy(source: Path, target: Path) -> None:
    """Copy a data directory: contents only, no metadata (the clone gets its own)."""
    shutil.copytree(source, target, symlinks=True, copy_function=shutil.copyfile)
