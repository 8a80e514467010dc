"""The external provider: a PostgreSQL DSN and an S3 endpoint given by the user.

The harness does not own these systems. Destructive steps (dropping, corrupting, deleting)
refuse to touch them unless their host is named in ``--drill-allow-destructive``; the targets
built here carry that decision in ``destructive_ok``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from harness.config import DrillConfig, PgTarget, S3Target
from harness.errors import ConfigError
from harness.infra.pg_server import ServerSettings
from harness.infra.providers.base import Fact, PgServer, RemoteServer
from harness.pg.binaries import PgBinaries, client_tools_for
from harness.pg.sql import server_version
from harness.redact import get_logger

log = get_logger(__name__)


class ExternalServer(RemoteServer):
    """A server the user runs; stop and start are no-ops."""

    def __init__(self, target: PgTarget, binaries: PgBinaries, version: str) -> None:
        """Wrap ``target`` with client tools matching its ``version``."""
        super().__init__(target, binaries)
        self.version = version

    def start(self) -> ExternalServer:
        """Nothing to start."""
        return self

    def stop(self) -> None:
        """The harness never stops a server it does not own."""


class ExternalProvider:
    """Hands out the user's server and S3 endpoint."""

    name = "external"

    def __init__(self, config: DrillConfig) -> None:
        """Check that a DSN was given.

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
        self._server: ExternalServer | None = None

    def pg_server(
        self, *, name: str, major: int | None = None, settings: ServerSettings | None = None
    ) -> ExternalServer:
        """The user's server (the same one for every name).

        Raises:
            ConnectError: the server cannot be reached.
            ConfigError: it runs another major version than ``major``.

        """
        if self._server is None:
            version = server_version(self._target)
            server_major = int(version.split(".")[0])
            if major is not None and major != server_major:
                raise ConfigError(
                    f"{self._target.display()} runs PostgreSQL {version}, not {major}"
                )
            self._server = ExternalServer(self._target, client_tools_for(server_major), version)
            log.info("external server %s runs PostgreSQL %s", self._target.display(), version)
        return self._server

    def release(self, server: PgServer, *, keep: bool) -> None:
        """Nothing to release: the server is the user's."""

    def s3_target(self) -> S3Target:
        """The user's S3 endpoint."""
        return external_s3_target(self.config)

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
        if self._server is not None:
            facts.append(Fact("client tools", self._server.binaries.describe()))
        return facts

    def close(self, *, keep: bool = False) -> None:
        """Nothing of ours runs."""


def external_s3_target(config: DrillConfig) -> S3Target:
    """The S3 endpoint named by the user.

    Raises:
        ConfigError: credentials are missing.

    """
    if not (config.s3_access_key_id and config.s3_secret_access_key):
        raise ConfigError(
            "an external S3 endpoint needs credentials: set DRILL_S3_ACCESS_KEY_ID and "
            "DRILL_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
        )
    host = (urlsplit(config.s3_endpoint).hostname or "") if config.s3_endpoint else "aws"
    return S3Target(
        endpoint_url=config.s3_endpoint,
        access_key_id=config.s3_access_key_id,
        secret_access_key=config.s3_secret_access_key,
        region=config.s3_region,
        destructive_ok=host in config.allow_destructive,
    )
