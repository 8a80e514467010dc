"""The compose provider: drills against the services of a team's own ``docker-compose.yml``.

For teams whose staging stack is a compose file (Supabase's self-hosted stack is one): the
session starts the stack under a project name of its own (``docker compose up --wait``), finds
the PostgreSQL service's published port and credentials in the resolved configuration
(``docker compose config``), drills against it exactly as against an external server, and
takes the stack down with its volumes at the end (kept with ``--drill-keep=all``). The stack
is the session's own, so destructive steps are allowed on it.

It follows pytest-docker's conventions (compose files, one project per session, wait until
the services answer, ``down -v``), but every command is an argv list run through
:func:`harness.proc.run`, with a timeout and redacted output, never a shell string.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.config import DrillConfig, KeepPolicy, S3Target
from harness.errors import ConfigError, ProviderUnavailable, ToolError
from harness.infra.pg_server import ServerSettings
from harness.infra.providers.base import Fact, PgServer
from harness.infra.providers.docker import docker_engine_problem
from harness.infra.providers.external import ExternalProvider, ExternalServer
from harness.proc import run
from harness.redact import get_logger, register_secret

log = get_logger(__name__)

UP_TIMEOUT = 300  # seconds for images to pull and services to turn healthy
PG_PORT = 5432
S3_PORT = 9000


@dataclass(frozen=True)
class ComposeCommand:
    """``docker compose`` argv lists for one project (files, name, env file)."""

    files: tuple[Path, ...]
    project: str
    executable: tuple[str, ...] = ("docker", "compose")
    env_file: Path | None = None

    def base(self) -> list[str]:
        """The command and the options every subcommand shares."""
        argv = [*self.executable, "--project-name", self.project]
        for path in self.files:
            argv += ["--file", str(path)]
        if self.env_file is not None:
            argv += ["--env-file", str(self.env_file)]
        return argv

    def up(self, services: tuple[str, ...] = (), *, timeout: int = UP_TIMEOUT) -> list[str]:
        """Start ``services`` (all when empty) detached, waiting until they are healthy."""
        return [
            *self.base(),
            "up",
            "--detach",
            "--wait",
            "--wait-timeout",
            str(timeout),
            *services,
        ]

    def config(self) -> list[str]:
        """Print the resolved configuration (``.env`` and interpolation applied) as JSON."""
        return [*self.base(), "config", "--format", "json"]

    def port(self, service: str, container_port: int) -> list[str]:
        """Print the host address a service's container port is published on."""
        return [*self.base(), "port", service, str(container_port)]

    def down(self, *, volumes: bool = True) -> list[str]:
        """Stop and remove the project's containers (and volumes)."""
        argv = [*self.base(), "down", "--remove-orphans", "--timeout", "10"]
        return [*argv, "--volumes"] if volumes else argv


def parse_port(output: str, *, service: str) -> tuple[str, int]:
    """``0.0.0.0:54322`` (or ``[::]:54322``) from ``docker compose port`` as (host, port).

    A wildcard address is reached through the loopback address.

    Raises:
        ConfigError: the service publishes no port.

    """
    line = next((ln.strip() for ln in output.splitlines() if ln.strip()), "")
    host, _, port = line.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"the compose service {service!r} publishes no port ({line or 'no output'}); add "
            f"ports: ['{PG_PORT}'] (or the container port it listens on) to it"
        )
    host = host.strip("[]")
    return ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host), int(port)  # noqa: S104


def _environment(config: dict[str, Any], service: str) -> dict[str, str]:
    services = config.get("services") or {}
    if service not in services:
        raise ConfigError(
            f"the compose file has no service {service!r} (it has: "
            f"{', '.join(sorted(services)) or 'none'}); name yours with "
            "--drill-compose-pg-service / --drill-compose-s3-service"
        )
    env = services[service].get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def pg_credentials(config: dict[str, Any], service: str) -> tuple[str, str, str]:
    """``(user, password, dbname)`` of the official image's variables on ``service``.

    Raises:
        ConfigError: no such service, or it sets no ``POSTGRES_PASSWORD``.

    """
    env = _environment(config, service)
    password = env.get("POSTGRES_PASSWORD", "")
    if not password:
        raise ConfigError(
            f"the compose service {service!r} sets no POSTGRES_PASSWORD; the drills connect "
            "with the image's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB"
        )
    register_secret(password)
    user = env.get("POSTGRES_USER") or "postgres"
    return user, password, env.get("POSTGRES_DB") or user


def s3_credentials(config: dict[str, Any], service: str) -> tuple[str, str]:
    """``(access key id, secret)`` of a MinIO service (``MINIO_ROOT_USER`` / ``_PASSWORD``).

    Raises:
        ConfigError: no such service, or it sets neither pair of variables.

    """
    env = _environment(config, service)
    key = env.get("MINIO_ROOT_USER") or env.get("MINIO_ACCESS_KEY", "")
    secret = env.get("MINIO_ROOT_PASSWORD") or env.get("MINIO_SECRET_KEY", "")
    if not (key and secret):
        raise ConfigError(
            f"the compose service {service!r} sets no MINIO_ROOT_USER / MINIO_ROOT_PASSWORD"
        )
    register_secret(secret)
    return key, secret


def compose_command(config: DrillConfig, *, project: str) -> ComposeCommand:
    """The command for the configured compose files.

    Raises:
        ConfigError: no compose file named, or one does not exist.

    """
    if not config.compose_file:
        raise ConfigError(
            "the compose provider needs your compose file: pass --drill-compose-file "
            "docker-compose.yml (several, comma-separated, are merged in order)"
        )
    files = tuple(Path(p.strip()) for p in config.compose_file.split(",") if p.strip())
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise ConfigError(f"compose file not found: {', '.join(missing)}")
    env_file = files[0].parent / ".env"
    return ComposeCommand(files, project, env_file=env_file if env_file.is_file() else None)


class ComposeProvider:
    """Starts the team's compose stack and drills against its PostgreSQL (and MinIO)."""

    name = "compose"

    def __init__(self, config: DrillConfig, *, base_dir: Path) -> None:
        """Start the stack and connect to it.

        Raises:
            ProviderUnavailable: no Docker engine answers.
            ConfigError: the compose file or its services are not usable.
            ToolError: ``docker compose`` failed.

        """
        command = compose_command(config, project=f"drill-{secrets.token_hex(4)}")
        problem = docker_engine_problem()
        if problem:
            raise ProviderUnavailable(
                f"--drill-provider=compose needs a Docker engine: {problem}. Start Docker (or "
                "set DOCKER_HOST), or run with --drill-provider=embedded, which needs none"
            )
        self.config = config
        self.command = command
        log.info("starting compose project %s from %s", command.project, config.compose_file)
        run(command.up(), timeout=UP_TIMEOUT + 60)
        try:
            self._delegate = ExternalProvider(self._external_config(), base_dir=base_dir)
        except (ConfigError, ToolError):
            run(command.down(), timeout=120, check=False)
            raise

    def _external_config(self) -> DrillConfig:
        resolved = json.loads(run(self.command.config(), timeout=60).stdout)
        pg = self.config.compose_pg_service
        user, password, dbname = pg_credentials(resolved, pg)
        host, port = parse_port(run(self.command.port(pg, PG_PORT), timeout=60).stdout, service=pg)
        dsn = f"postgresql://{quote(user)}:{quote(password, safe='')}@{host}:{port}/{dbname}"
        changes: dict[str, Any] = {"dsn": dsn, "allow_destructive": (host,)}
        s3 = self.config.compose_s3_service
        if s3:
            key, secret = s3_credentials(resolved, s3)
            s3_host, s3_port = parse_port(
                run(self.command.port(s3, S3_PORT), timeout=60).stdout, service=s3
            )
            changes |= {
                "s3_backend": "external",
                "s3_endpoint": f"http://{s3_host}:{s3_port}",
                "s3_access_key_id": key,
                "s3_secret_access_key": secret,
            }
        return replace(self.config, provider="external", **changes)

    def pg_server(
        self,
        *,
        name: str,
        major: int | None = None,
        settings: ServerSettings | None = None,
        namespace: str | None = None,
    ) -> ExternalServer:
        """The stack's PostgreSQL, one namespace of databases per drill (as external)."""
        return self._delegate.pg_server(
            name=name, major=major, settings=settings, namespace=namespace
        )

    def release(self, server: PgServer, *, keep: bool) -> None:
        """Drop the drill's databases."""
        self._delegate.release(server, keep=keep)

    @property
    def s3_throwaway(self) -> bool:
        """True: the stack's MinIO, or a throwaway one here, goes with the session."""
        return True

    def s3_target(self) -> S3Target:
        """The stack's MinIO (``--drill-compose-s3-service``), else ``--drill-s3``."""
        return self._delegate.s3_target()

    def facts(self) -> list[Fact]:
        """What this session uses."""
        return [
            Fact("provider", f"compose (project {self.command.project})"),
            Fact("compose files", ", ".join(str(p) for p in self.command.files)),
            *[f for f in self._delegate.facts() if f.label != "provider"],
        ]

    def close(self, *, keep: bool = False) -> None:
        """Take the stack down with its volumes (unless ``--drill-keep=all``)."""
        try:
            self._delegate.close(keep=keep)
        finally:
            if self.config.keep is KeepPolicy.ALL:
                log.warning("kept compose project %s (--drill-keep=all)", self.command.project)
            else:
                run(self.command.down(), timeout=180, check=False)
