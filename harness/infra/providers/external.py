"""The external provider: a PostgreSQL server (DSN) and an S3 endpoint given by the user.

The harness does not own these systems. Destructive steps (dropping, corrupting, deleting)
refuse to touch them unless their host is named in ``--drill-allow-destructive``; the targets
built here carry that decision in ``destructive_ok``.

Every drill of a suite runs on the same server, so each drill works in databases of its own:
a server handed out with a *namespace* maps the database names the drill asks for ("app")
to names unique to the drill and the run (:func:`harness.infra.naming.database_name`), and
releasing it drops every database it made, whether the drill passed or failed. Cluster-wide
roles the drills need (``anon``, ``authenticated`` ...) are created when missing and left in
place: the user's own system may rely on them.

Backups may go to the user's S3 endpoint or to a throwaway SeaweedFS or moto started here
(``--drill-s3=seaweedfs|moto``), which needs no S3 credentials.
"""

from __future__ import annotations

from pathlib import Path

from harness.config import DrillConfig, KeepPolicy, PgTarget, S3Target
from harness.errors import ConfigError, UnsupportedByProvider
from harness.infra.janitor import drop_databases
from harness.infra.naming import database_name
from harness.infra.pg_server import ServerSettings
from harness.infra.providers.base import Fact, PgServer, RemoteServer
from harness.infra.providers.s3_backend import S3Backend
from harness.pg.binaries import PgBinaries, client_tools_for
from harness.pg.sql import server_version
from harness.redact import get_logger

log = get_logger(__name__)

# Databases every cluster has and a drill uses as they are (to create and drop others).
MAINTENANCE_DATABASES = frozenset({"postgres", "template0", "template1"})


class ExternalServer(RemoteServer):
    """A server the user runs; stop and start are no-ops.

    With a ``namespace``, every database name but the maintenance ones is mapped into it.
    """

    def __init__(
        self,
        target: PgTarget,
        binaries: PgBinaries,
        version: str,
        *,
        namespace: str | None = None,
    ) -> None:
        """Wrap ``target`` with client tools matching its ``version``.

        Args:
            target: the user's server (any database).
            binaries: local client tools of the server's major version.
            version: the server's version, e.g. ``16.4``.
            namespace: a prefix unique to one server of one drill (see
                :func:`harness.infra.naming.server_namespace`); None maps nothing.

        """
        super().__init__(target, binaries)
        self.version = version
        self.namespace = namespace

    def target(self, dbname: str = "postgres") -> PgTarget:
        """Connection details for ``dbname``, mapped into the namespace when there is one."""
        if self.namespace is None or dbname in MAINTENANCE_DATABASES:
            return super().target(dbname)
        return super().target(database_name(self.namespace, dbname))

    def start(self) -> ExternalServer:
        """Nothing to start."""
        return self

    def stop(self) -> None:
        """The harness never stops a server it does not own."""


class ExternalProvider:
    """Hands out the user's server (one view per drill) and an S3 endpoint."""

    name = "external"

    def __init__(self, config: DrillConfig, *, base_dir: Path | None = None) -> None:
        """Check that a DSN was given.

        Args:
            config: the resolved configuration.
            base_dir: where a throwaway SeaweedFS may keep its files (``--drill-s3``).

        Raises:
            ConfigError: no DSN.

        """
        if not config.dsn:
            raise ConfigError(
                "the external provider needs a PostgreSQL DSN: pass --drill-dsn "
                "postgresql://user@host:5432/dbname (or set DRILL_DSN in the environment to "
                "keep the password off the command line), or use --drill-provider=embedded"
            )
        self.config = config
        probe = PgTarget.from_dsn(config.dsn)
        self._target = PgTarget.from_dsn(
            config.dsn, destructive_ok=probe.host in config.allow_destructive
        )
        self._base_dir = base_dir
        self._s3 = S3Backend(config, workdir=self._s3_workdir, provider=self.name)
        self._binaries: PgBinaries | None = None
        self._version = ""
        self._namespaces: set[str] = set()

    def pg_server(
        self,
        *,
        name: str,
        major: int | None = None,
        settings: ServerSettings | None = None,
        namespace: str | None = None,
    ) -> ExternalServer:
        """The user's server, seen through ``namespace`` when given.

        Args:
            name: the drill's name for the server (for logs).
            major: the major version the drill needs, if any.
            settings: server settings (WAL archiving ...): a server the harness does not
                own cannot be given any, so asking is refused.
            namespace: a prefix unique to this server of this drill; its databases are
                dropped on :meth:`release`.

        Raises:
            UnsupportedByProvider: ``settings`` were asked for.
            ConnectError: the server cannot be reached.
            ConfigError: it runs another major version than ``major``.

        """
        if settings is not None:
            raise UnsupportedByProvider(
                f"this drill configures its {name!r} server (WAL level, archiving ...); the "
                "external provider drills against a server the harness does not own, so only "
                "the embedded provider can run it"
            )
        if self._binaries is None:
            self._version = server_version(self._target)
            self._binaries = client_tools_for(int(self._version.split(".")[0]))
            log.info("external server %s runs PostgreSQL %s", self._target.display(), self._version)
        server_major = int(self._version.split(".")[0])
        if major is not None and major != server_major:
            raise ConfigError(
                f"{self._target.display()} runs PostgreSQL {self._version}, not {major}"
            )
        if namespace is not None:
            self._namespaces.add(namespace)
            log.info("%s of this drill works in databases %s*", name, namespace)
        return ExternalServer(self._target, self._binaries, self._version, namespace=namespace)

    def release(self, server: PgServer, *, keep: bool) -> None:
        """Drop the databases made through ``server``'s namespace.

        They go even when the drill failed: the system is not ours, and evidence of the
        failure is in the report. Only ``--drill-keep=all`` keeps them.

        Raises:
            ConnectError: the server cannot be reached to drop them.

        """
        if not isinstance(server, ExternalServer):
            raise TypeError(f"{server!r} was not made by the external provider")
        if server.namespace is None:
            return
        if keep and self.config.keep is KeepPolicy.ALL:
            log.info("keeping databases %s* (--drill-keep=all)", server.namespace)
            return
        drop_databases(self._target, server.namespace)
        self._namespaces.discard(server.namespace)

    @property
    def s3_throwaway(self) -> bool:
        """True when backups go to a SeaweedFS or moto started here."""
        return self._s3.throwaway

    def s3_target(self) -> S3Target:
        """The user's S3 endpoint, or a throwaway one here (``--drill-s3``)."""
        return self._s3.target()

    def facts(self) -> list[Fact]:
        """What this session uses."""
        facts = [
            Fact("provider", "external (user-supplied systems)"),
            Fact("PostgreSQL", self._target.display()),
            Fact(
                "destructive steps allowed on",
                ", ".join(self.config.allow_destructive) or "nothing",
            ),
        ]
        if self._binaries is not None:
            facts.append(Fact("client tools", self._binaries.describe()))
        return facts + self._s3.facts()

    def close(self, *, keep: bool = False) -> None:
        """Drop databases of drills that were never released; stop a throwaway S3 server."""
        try:
            if not (keep and self.config.keep is KeepPolicy.ALL):
                for namespace in sorted(self._namespaces):
                    drop_databases(self._target, namespace)
                self._namespaces.clear()
        finally:
            self._s3.close(keep=keep)

    def _s3_workdir(self) -> Path:
        if self._base_dir is None:
            raise ConfigError(
                "--drill-s3=seaweedfs with the external provider needs a working directory"
            )
        self._base_dir.mkdir(parents=True, exist_ok=True)
        return self._base_dir
