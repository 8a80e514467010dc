"""The session's S3 endpoint for providers that run no containers.

SeaweedFS or moto started on this machine (throwaway: drills may delete in them, and their
buckets vanish with them), or the user's own endpoint. Shared by the embedded provider and
the external one: a drill run against a staging PostgreSQL server can keep its backups on a
throwaway SeaweedFS or moto here, without any S3 credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.config import DrillConfig, S3Target
from harness.errors import ConfigError, ProviderUnavailable
from harness.infra.providers.base import Fact
from harness.infra.s3.moto import MotoServer
from harness.infra.s3.seaweed import SeaweedServer, weed_version

LOCAL_BACKENDS = ("seaweedfs", "moto")


class S3Backend:
    """Starts the configured backend on first use; stops it at :meth:`close`."""

    def __init__(self, config: DrillConfig, *, workdir: Callable[[], Path], provider: str) -> None:
        """Prepare; nothing starts until :meth:`target`.

        Args:
            config: the resolved configuration (``s3_backend`` says which).
            workdir: returns the directory a SeaweedFS server may use (called on start).
            provider: the provider's name, for the message when the backend needs another.

        """
        self.config = config
        self._workdir = workdir
        self._provider = provider
        self._server: SeaweedServer | MotoServer | None = None
        self._target: S3Target | None = None

    @property
    def throwaway(self) -> bool:
        """True when the endpoint is a server started here for this session."""
        return self.config.s3_backend in LOCAL_BACKENDS

    def target(self) -> S3Target:
        """The endpoint, started on first use.

        Raises:
            ProviderUnavailable: the backend needs another provider (minio: docker).
            ConfigError: the user's endpoint lacks credentials.
            ServerStartError: a local server did not start.

        """
        if self._target is not None:
            return self._target
        backend = self.config.s3_backend
        if backend == "external":
            try:
                self._target = self.config.external_s3_target()
            except ConfigError as exc:
                raise ConfigError(
                    f"{exc}; or keep the drills' backups on a throwaway S3 server here with "
                    "--drill-s3=seaweedfs or --drill-s3=moto"
                ) from exc
            return self._target
        if backend == "seaweedfs":
            self._server = SeaweedServer(
                self._workdir() / "seaweedfs", start_timeout=self.config.start_timeout
            )
        elif backend == "moto":
            self._server = MotoServer()
        else:
            raise ProviderUnavailable(
                f"--drill-s3={backend} needs the docker provider; with the {self._provider} "
                "provider use seaweedfs, moto, or external"
            )
        self._server.start()
        self._target = self._server.target()
        return self._target

    def facts(self) -> list[Fact]:
        """Which endpoint is in use (nothing before first use)."""
        if isinstance(self._server, SeaweedServer):
            version = weed_version(self._server.weed)
            return [Fact("S3", f"SeaweedFS {version} at {self._server.endpoint_url}")]
        if isinstance(self._server, MotoServer):
            return [Fact("S3", f"moto server mode at {self._server.endpoint_url}")]
        if self._target is not None:
            return [Fact("S3", self._target.display())]
        return []

    def close(self, *, keep: bool) -> None:
        """Stop a local server; delete its files unless ``keep``."""
        if self._server is not None:
            if keep:
                self._server.stop()
            else:
                self._server.remove()
            self._server = None
        self._target = None
