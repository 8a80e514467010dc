"""The docker provider: PostgreSQL and MinIO in containers, for CI machines with an engine.

Kept thin on purpose: testcontainers starts and waits; everything after that (dump, restore,
verify) is the same code the embedded provider uses. Client tools run on this machine and must
match the server's major version (:func:`client_tools_for`).
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from harness.config import DrillConfig, PgTarget, S3Target
from harness.errors import ProviderUnavailable
from harness.infra.pg_server import ServerSettings
from harness.infra.providers.base import Fact, PgServer, RemoteServer
from harness.pg.binaries import PgBinaries, client_tools_for
from harness.pg.sql import server_version
from harness.redact import get_logger, register_secret

log = get_logger(__name__)


def docker_engine_problem() -> str | None:
    """Why no Docker engine can be used here, or None when one answers a ping."""
    try:
        import docker
    except ImportError:
        return "the `docker` Python package is missing (pip install testcontainers)"
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
    except Exception as exc:  # the SDK raises several unrelated types for "no engine"
        return f"no Docker engine answers at {where} ({type(exc).__name__})"
    return None


class ContainerServer(RemoteServer):
    """A PostgreSQL container started by testcontainers."""

    def __init__(self, container: Any, target: PgTarget, binaries: PgBinaries) -> None:
        """Wrap a started container."""
        super().__init__(target, binaries)
        self.container = container

    def start(self) -> ContainerServer:
        """Start the container's server again."""
        self.container.get_wrapped_container().start()
        return self

    def stop(self) -> None:
        """Stop the container (kept until released)."""
        self.container.get_wrapped_container().stop(timeout=10)


class DockerProvider:
    """PostgreSQL via ``PostgresContainer`` (image configurable) and S3 via ``MinioContainer``."""

    name = "docker"

    def __init__(self, config: DrillConfig) -> None:
        """Check for an engine before anything else.

        Raises:
            ProviderUnavailable: no Docker engine answers.

        """
        problem = docker_engine_problem()
        if problem:
            raise ProviderUnavailable(
                f"--drill-provider=docker needs a Docker engine: {problem}. Start Docker (or "
                "set DOCKER_HOST), or run with --drill-provider=embedded, which needs none"
            )
        self.config = config
        self._containers: list[Any] = []
        self._s3: S3Target | None = None

    def pg_server(
        self,
        *,
        name: str,
        major: int | None = None,
        settings: ServerSettings | None = None,
        namespace: str | None = None,
    ) -> ContainerServer:
        """Start a PostgreSQL container of the configured image.

        Args:
            name: the drill's name for the server.
            major: the major version the image must run, if any.
            settings: its WAL level is passed to the server.
            namespace: ignored: every container is the drill's alone.

        Raises:
            ProviderUnavailable: the image runs another major version than ``major``.

        """
        from testcontainers.postgres import PostgresContainer

        password = secrets.token_urlsafe(18)
        register_secret(password)
        container = PostgresContainer(
            self.config.docker_pg_image,
            username="postgres",
            password=password,
            dbname="postgres",
            driver=None,
        )
        if settings is not None and settings.wal_level:
            container.with_command(f"postgres -c wal_level={settings.wal_level}")
        container.start()
        self._containers.append(container)
        target = PgTarget(
            host=container.get_container_host_ip(),
            port=int(container.get_exposed_port(5432)),
            user="postgres",
            dbname="postgres",
            password=password,
            destructive_ok=True,
        )
        version = server_version(target)
        server_major = int(version.split(".")[0])
        if major is not None and server_major != major:
            raise ProviderUnavailable(
                f"image {self.config.docker_pg_image} runs PostgreSQL {version}, not {major}; "
                f"set --drill-docker-pg-image=postgres:{major}"
            )
        return ContainerServer(container, target, client_tools_for(server_major))

    def release(self, server: PgServer, *, keep: bool) -> None:
        """Remove the container unless ``keep``."""
        if isinstance(server, ContainerServer) and not keep:
            server.container.stop()
            self._containers.remove(server.container)

    @property
    def s3_throwaway(self) -> bool:
        """Always true: the MinIO container goes with the session."""
        return True

    def s3_target(self) -> S3Target:
        """Start one MinIO container per session."""
        if self._s3 is None:
            from testcontainers.minio import MinioContainer

            secret = secrets.token_urlsafe(24)
            register_secret(secret)
            minio = MinioContainer(access_key="drill" + secrets.token_hex(4), secret_key=secret)
            minio.start()
            self._containers.append(minio)
            config = minio.get_config()
            self._s3 = S3Target(
                endpoint_url=f"http://{config['endpoint']}",
                access_key_id=config["access_key"],
                secret_access_key=secret,
                destructive_ok=True,
            )
        return self._s3

    def facts(self) -> list[Fact]:
        """What this session uses."""
        return [
            Fact("provider", "docker (testcontainers)"),
            Fact("PostgreSQL image", self.config.docker_pg_image),
        ]

    def close(self, *, keep: bool = False) -> None:
        """Remove every container (testcontainers' reaper covers crashes)."""
        for container in self._containers:
            try:
                container.stop()
            except Exception:  # best effort: keep removing the others
                log.exception("could not remove container %s", container)
        self._containers.clear()
