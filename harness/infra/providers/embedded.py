"""The default provider: throwaway PostgreSQL clusters and an S3 server on this machine.

No Docker needed. PostgreSQL comes from the binaries :func:`find_binaries` picks (one
template per major version, initialised once per session); S3 from SeaweedFS (default) or
moto's server mode. ``close()`` stops everything it started; an ``atexit`` hook does the same
as a last resort if the caller never gets there.

Waiting is what costs here, so the provider works ahead: each template keeps one copy of
itself ready for the next server, and :meth:`EmbeddedProvider.prepare_s3` starts the S3
server in the background (while PostgreSQL templates are built) for the first drill that
asks for it.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import shutil
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

from harness.config import DrillConfig, S3Target
from harness.infra.pg_server import ClusterTemplate, ServerSettings, ThrowawayServer
from harness.infra.privilege import ServerIdentity, choose_identity
from harness.infra.providers.base import Fact, PgServer
from harness.infra.providers.s3_backend import S3Backend
from harness.pg.binaries import find_binaries
from harness.redact import get_logger

log = get_logger(__name__)


class EmbeddedProvider:
    """Servers as local processes under one session directory."""

    name = "embedded"

    def __init__(self, config: DrillConfig, *, base_dir: Path) -> None:
        """Prepare; servers start on demand.

        Args:
            config: the resolved drill configuration.
            base_dir: a private directory for this session's servers.

        """
        self.config = config
        self._requested_base = base_dir
        self._base: Path | None = None
        self._identity: ServerIdentity | None = None
        self._templates: dict[Path, ClusterTemplate] = {}
        self._servers: list[ThrowawayServer] = []
        self._s3 = S3Backend(config, workdir=lambda: self.base_dir, provider=self.name)
        self._s3_start: Future[S3Target] | None = None
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        atexit.register(self._atexit)

    # -- PostgreSQL ---------------------------------------------------------------------

    @property
    def identity(self) -> ServerIdentity:
        """How server processes run (decided, and logged, on first use)."""
        if self._identity is None:
            self._identity = choose_identity(self.config.run_as)
        return self._identity

    @property
    def base_dir(self) -> Path:
        """Where server directories go; outside private temp dirs for a system user."""
        if self._base is None:
            if self.identity.needs_own_tmpdir:
                self._base = Path(tempfile.mkdtemp(prefix="drill-pg-"))
                self.identity.hand_over(self._base)
            else:
                self._base = self._requested_base
                self._base.mkdir(parents=True, exist_ok=True)
        return self._base

    def template(self, major: int | None = None) -> ClusterTemplate:
        """The template for the chosen binaries (``major`` or the configured default)."""
        binaries = find_binaries(
            bindir=self.config.pg_bindir, major=major or self.config.pg_version
        )
        with self._lock:
            if binaries.bindir not in self._templates:
                log.info("PostgreSQL binaries: %s", binaries.describe())
                self._templates[binaries.bindir] = ClusterTemplate(
                    binaries,
                    base_dir=self.base_dir / "templates",
                    identity=self.identity,
                    spare=True,
                )
            return self._templates[binaries.bindir]

    def pg_server(
        self,
        *,
        name: str,
        major: int | None = None,
        settings: ServerSettings | None = None,
        namespace: str | None = None,
    ) -> ThrowawayServer:
        """Start a throwaway server copied from the template.

        Args:
            name: the drill's name for the server (its directory is named after it).
            major: the PostgreSQL major version; default: the configured one.
            settings: WAL level, archiving and extra settings.
            namespace: ignored: every server here is the drill's alone.

        """
        template = self.template(major)
        server = ThrowawayServer(
            template,
            workdir=self.base_dir / f"{name}-{next(self._counter)}",
            settings=settings,
            start_timeout=self.config.start_timeout,
        )
        with self._lock:
            self._servers.append(server)
        server.start()
        return server

    def release(self, server: PgServer, *, keep: bool) -> None:
        """Stop a server; delete its directory unless ``keep``."""
        if not isinstance(server, ThrowawayServer):
            raise TypeError(f"{server!r} was not made by the embedded provider")
        server.stop()
        if keep:
            log.info("keeping %s (server log: %s)", server.workdir, server.log_path)
        else:
            server.remove()
        with self._lock:
            if server in self._servers:
                self._servers.remove(server)

    # -- S3 -------------------------------------------------------------------------------

    @property
    def s3_throwaway(self) -> bool:
        """True unless the configured S3 backend is the user's endpoint."""
        return self._s3.throwaway

    def prepare_s3(self) -> None:
        """Start the configured S3 backend in the background; :meth:`s3_target` waits for it.

        For sessions that will need S3: its start (about half a second for SeaweedFS)
        overlaps whatever comes next, such as building the PostgreSQL templates.
        """
        with self._lock:
            if self._s3_start is not None:
                return
            pending: Future[S3Target] = Future()
            self._s3_start = pending

        def start() -> None:
            # The result, or the error, is taken in s3_target().
            try:
                pending.set_result(self._s3.target())
            except BaseException as exc:  # handed over to s3_target(), raised there
                pending.set_exception(exc)

        threading.Thread(target=start, name="s3-start", daemon=True).start()

    def s3_target(self) -> S3Target:
        """Start the configured S3 backend on first use and return its endpoint.

        Raises:
            ServerStartError: the S3 server did not start (also when started by
                :meth:`prepare_s3`: its error is raised here).

        """
        with self._lock:
            pending = self._s3_start
        if pending is not None:
            return pending.result()
        return self._s3.target()

    # -- reporting and teardown -----------------------------------------------------------

    def facts(self) -> list[Fact]:
        """What this session uses."""
        facts = [Fact("provider", "embedded (local processes, no Docker)")]
        facts += [
            Fact(f"PostgreSQL {t.binaries.major}", t.binaries.describe())
            for t in self._templates.values()
        ]
        if self._identity is not None:
            facts.append(Fact("server identity", self._identity.describe()))
        return facts + self._s3.facts()

    def close(self, *, keep: bool = False) -> None:
        """Stop every server and the S3 backend; delete the session directory unless keep."""
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            try:
                server.stop()
            except Exception:  # best effort: one stuck server must not leak the others
                log.exception("could not stop the server in %s", server.workdir)
        for template in list(self._templates.values()):
            template.close()
        if self._s3_start is not None:
            # A start under way must finish before its server can be stopped.
            with contextlib.suppress(Exception):
                self._s3_start.result()
            self._s3_start = None
        self._s3.close(keep=keep)
        if self._base is not None and not keep:
            shutil.rmtree(self._base, ignore_errors=True)
        atexit.unregister(self._atexit)

    def _atexit(self) -> None:
        # Last resort for a caller that never reached close(): leave no process behind.
        self.close(keep=True)
