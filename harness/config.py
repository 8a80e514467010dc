"""Configuration as frozen dataclasses, resolved once from options, ini values and environment.

Every option exists in three spellings: ``--drill-<name>`` on the pytest command line,
``drill_<name>`` in the ini file, and ``DRILL_<NAME>`` in the environment, resolved in that
order by :meth:`DrillConfig.resolve`. The pytest plugin and the ``drill`` CLI both read
:data:`OPTIONS` so the three spellings cannot drift apart.
"""

from __future__ import annotations

import enum
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from harness.errors import ConfigError
from harness.redact import redact, register_secret

PROVIDERS = ("embedded", "docker", "external", "compose")
S3_BACKENDS = ("seaweedfs", "moto", "minio", "external")
RUN_AS = ("auto", "userns", "system-user")


class KeepPolicy(enum.Enum):
    """Which throwaway data directories and dumps survive the test session."""

    FAILED = "failed"
    ALL = "all"
    NONE = "none"


@dataclass(frozen=True)
class OptionSpec:
    """One option, known to the pytest plugin, the ini file and the environment."""

    name: str
    help: str
    default: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def cli(self) -> str:
        """The command-line spelling, e.g. ``--drill-provider``."""
        return "--drill-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        """The ini spelling, e.g. ``drill_provider``."""
        return "drill_" + self.name

    @property
    def env(self) -> str:
        """The environment spelling, e.g. ``DRILL_PROVIDER``."""
        return "DRILL_" + self.name.upper()


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("provider", "where servers come from", "embedded", PROVIDERS),
    OptionSpec("pg_bindir", "directory holding initdb, pg_ctl, pg_dump ... (default: search)"),
    OptionSpec("pg_version", "PostgreSQL major version to use, e.g. 17 (default: newest found)"),
    OptionSpec("s3", "S3 backend (default: seaweedfs, minio for docker)", None, S3_BACKENDS),
    OptionSpec("environment", "recovery-target profile", "production"),
    OptionSpec("keep", "keep data dirs and dumps of drills", "failed", ("failed", "all", "none")),
    OptionSpec("scale", "data set scale factor (1 = small, fast drills)", "1"),
    OptionSpec("run_as", "how to run PostgreSQL when we are root", "auto", RUN_AS),
    OptionSpec("dsn", "external provider: the PostgreSQL DSN to drill against"),
    OptionSpec("s3_endpoint", "external/explicit S3 endpoint URL"),
    OptionSpec("s3_region", "S3 region", "us-east-1"),
    OptionSpec("allow_destructive", "comma-separated external hosts destructive steps may touch"),
    OptionSpec("docker_pg_image", "docker provider: PostgreSQL image", "postgres:17"),
    OptionSpec("compose_file", "compose provider: your docker-compose.yml (comma-separated list)"),
    OptionSpec("compose_pg_service", "compose provider: the PostgreSQL service", "db"),
    OptionSpec("compose_s3_service", "compose provider: a MinIO service for backups"),
    OptionSpec("start_timeout", "seconds to wait for a server to start", "60"),
    OptionSpec("evidence_dir", "where drills write their JSON evidence", "reports/evidence"),
    OptionSpec("rto", "override the profile's recovery time objective, e.g. 30m, 4h"),
    OptionSpec("rpo", "override the profile's recovery point objective, e.g. 15m, 1h"),
)


@dataclass(frozen=True)
class RecoveryTargets:
    """Recovery time and recovery point objectives of one environment profile."""

    environment: str
    rto_seconds: float
    rpo_seconds: float


HOUR = 3600.0
# P6 sets production's RPO to 1 h (stricter than C8's 24 h); staging and development are C8's.
PROFILES: Mapping[str, RecoveryTargets] = {
    "production": RecoveryTargets("production", 4 * HOUR, 1 * HOUR),
    "staging": RecoveryTargets("staging", 8 * HOUR, 48 * HOUR),
    "development": RecoveryTargets("development", 24 * HOUR, 7 * 24 * HOUR),
}


_UNITS = {"s": 1.0, "m": 60.0, "h": HOUR, "d": 24 * HOUR, "w": 7 * 24 * HOUR}


def parse_duration(text: str) -> float:
    """Seconds in ``"90s"``, ``"30m"``, ``"4h"``, ``"1d"``, ``"1w"`` or a bare number of seconds.

    Raises:
        ConfigError: not a duration.

    """
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:]) if value else None
    number = value[:-1] if unit is not None else value
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not a duration; write e.g. 90s, 30m, 4h, 1d or 1w") from exc
    if seconds < 0:
        raise ConfigError(f"{text!r} is negative")
    return seconds


def load_profiles(pyproject: Path) -> dict[str, RecoveryTargets]:
    """Profiles from ``[tool.drill.environments.<name>]`` (``rto``, ``rpo``) over the defaults.

    Raises:
        ConfigError: the table is malformed.

    """
    profiles = dict(PROFILES)
    if not pyproject.is_file():
        return profiles
    try:
        data = tomllib.loads(pyproject.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}") from exc
    table = data.get("tool", {}).get("drill", {}).get("environments", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.drill.environments] in {pyproject} must be a table")
    for name, values in table.items():
        base = profiles.get(name, RecoveryTargets(name, 4 * HOUR, HOUR))
        if not isinstance(values, dict):
            raise ConfigError(f"[tool.drill.environments.{name}] in {pyproject} must be a table")
        profiles[name] = RecoveryTargets(
            name,
            parse_duration(str(values["rto"])) if "rto" in values else base.rto_seconds,
            parse_duration(str(values["rpo"])) if "rpo" in values else base.rpo_seconds,
        )
    return profiles


@dataclass(frozen=True)
class PgTarget:
    """How to reach one PostgreSQL database. The password never appears in ``repr``."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)
    # True only for servers the harness created itself or hosts named in the allow-list.
    destructive_ok: bool = False

    def __post_init__(self) -> None:
        """Register the password for redaction the moment it enters the harness."""
        register_secret(self.password)

    @classmethod
    def from_dsn(cls, dsn: str, *, destructive_ok: bool = False) -> Self:
        """Parse a URL (``postgresql://...``) or key=value DSN.

        Raises:
            ConfigError: the DSN cannot be parsed or names no host.

        """
        # psycopg (libpq and its adapters, ~20 MiB) loads only where PostgreSQL is involved:
        # object, key-value and repository backups import this module without needing it.
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(
                f"cannot parse the DSN {redact(dsn)!r}: {redact(str(exc))}; "
                "expected postgresql://user:password@host:port/dbname"
            ) from exc
        password = params.get("password")
        register_secret(str(password) if password is not None else None)
        host = str(params.get("host") or "")
        if not host:
            raise ConfigError(f"the DSN {redact(dsn)!r} names no host; add @host:port")
        try:
            port = int(params.get("port") or 5432)
        except ValueError as exc:
            raise ConfigError(f"the DSN {redact(dsn)!r} has a non-numeric port") from exc
        user = str(params.get("user") or "postgres")
        return cls(
            host=host,
            port=port,
            user=user,
            dbname=str(params.get("dbname") or user),
            password=str(password) if password is not None else None,
            destructive_ok=destructive_ok,
        )

    def with_dbname(self, dbname: str) -> Self:
        """The same server and credentials, another database."""
        return replace(self, dbname=dbname)

    def conninfo(self) -> str:
        """A libpq conninfo string, password included: pass it to psycopg, never log it."""
        from psycopg.conninfo import make_conninfo  # lazily: see from_dsn

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=self.dbname,
            password=self.password or None,
            connect_timeout=10,
        )

    def libpq_env(self) -> dict[str, str]:
        """Environment for client tools: where to connect, and the password out of argv."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
            "PGCONNECT_TIMEOUT": "10",
        }
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def display(self) -> str:
        """A printable address without the password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class S3Target:
    """How to reach an S3-compatible endpoint. The secret never appears in ``repr``."""

    endpoint_url: str | None
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = "us-east-1"
    # Objects on throwaway endpoints may be deleted by drills; on external ones never.
    destructive_ok: bool = False

    def __post_init__(self) -> None:
        """Register the secret key for redaction."""
        register_secret(self.secret_access_key)

    def display(self) -> str:
        """A printable description without the secret."""
        return f"{self.endpoint_url or 'AWS S3'} (key id {self.access_key_id[:4]}...)"


@dataclass(frozen=True)
class DrillConfig:
    """Everything a drill session needs to know, resolved once."""

    provider: str = "embedded"
    pg_bindir: Path | None = None
    pg_version: int | None = None
    s3_backend: str = "seaweedfs"
    targets: RecoveryTargets = PROFILES["production"]
    keep: KeepPolicy = KeepPolicy.FAILED
    scale: int = 1
    run_as: str = "auto"
    dsn: str | None = field(default=None, repr=False)
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    allow_destructive: tuple[str, ...] = ()
    docker_pg_image: str = "postgres:17"
    compose_file: str | None = None
    compose_pg_service: str = "db"
    compose_s3_service: str | None = None
    start_timeout: float = 60.0
    evidence_dir: Path = Path("reports/evidence")

    def __post_init__(self) -> None:
        """Register the secrets this configuration holds for redaction."""
        register_secret(self.s3_secret_access_key)
        if self.dsn:
            PgTarget.from_dsn(self.dsn)  # parsing registers the password

    @classmethod
    def resolve(
        cls,
        lookup: Callable[[OptionSpec], str | None],
        environ: Mapping[str, str] | None = None,
        profiles: Mapping[str, RecoveryTargets] = PROFILES,
    ) -> Self:
        """Resolve every option: ``lookup`` (CLI, then ini), then environment, then default.

        Args:
            lookup: returns the CLI-or-ini value of an option, or None when unset.
            environ: the environment to read (default ``os.environ``).
            profiles: recovery targets by environment (see :func:`load_profiles`).

        Raises:
            ConfigError: a value is not one of the allowed choices or not a number.

        """
        env = os.environ if environ is None else environ
        raw: dict[str, str | None] = {}
        for spec in OPTIONS:
            value = lookup(spec)
            if value in (None, ""):
                value = env.get(spec.env) or spec.default
            if value is not None and spec.choices and value not in spec.choices:
                raise ConfigError(
                    f"{spec.cli} / {spec.ini} / {spec.env} = {value!r} is not one of "
                    f"{', '.join(spec.choices)}"
                )
            raw[spec.name] = value
        provider = raw["provider"] or "embedded"
        environment = raw["environment"] or "production"
        if environment not in profiles:
            raise ConfigError(
                f"unknown environment profile {environment!r}; choose one of "
                f"{', '.join(profiles)} (or define it under [tool.drill.environments])"
            )
        targets = profiles[environment]
        if raw["rto"] or raw["rpo"]:
            targets = RecoveryTargets(
                environment,
                parse_duration(raw["rto"]) if raw["rto"] else targets.rto_seconds,
                parse_duration(raw["rpo"]) if raw["rpo"] else targets.rpo_seconds,
            )
        s3_default = {
            "embedded": "seaweedfs",
            "docker": "minio",
            "external": "external",
            "compose": "seaweedfs",
        }
        dsn = raw["dsn"]
        return cls(
            provider=provider,
            pg_bindir=Path(raw["pg_bindir"]) if raw["pg_bindir"] else None,
            pg_version=_as_int(raw["pg_version"], OPTIONS_BY_NAME["pg_version"]),
            s3_backend=raw["s3"] or s3_default[provider],
            targets=targets,
            keep=KeepPolicy(raw["keep"]),
            scale=_as_int(raw["scale"], OPTIONS_BY_NAME["scale"]) or 1,
            run_as=raw["run_as"] or "auto",
            dsn=dsn,
            s3_endpoint=raw["s3_endpoint"],
            s3_region=raw["s3_region"] or "us-east-1",
            s3_access_key_id=env.get("DRILL_S3_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID"),
            s3_secret_access_key=(
                env.get("DRILL_S3_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_ACCESS_KEY")
            ),
            allow_destructive=host_list(raw["allow_destructive"]),
            docker_pg_image=raw["docker_pg_image"] or "postgres:17",
            compose_file=raw["compose_file"],
            compose_pg_service=raw["compose_pg_service"] or "db",
            compose_s3_service=raw["compose_s3_service"],
            evidence_dir=Path(raw["evidence_dir"] or "reports/evidence"),
            start_timeout=float(
                _as_int(raw["start_timeout"], OPTIONS_BY_NAME["start_timeout"]) or 60
            ),
        )

    def external_s3_target(self) -> S3Target:
        """The S3 endpoint the user named (``s3_endpoint``, keys from the environment).

        Raises:
            ConfigError: credentials are missing.

        """
        if not (self.s3_access_key_id and self.s3_secret_access_key):
            raise ConfigError(
                "an external S3 endpoint needs credentials: set DRILL_S3_ACCESS_KEY_ID and "
                "DRILL_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
            )
        host = (urlsplit(self.s3_endpoint).hostname or "") if self.s3_endpoint else "aws"
        return S3Target(
            endpoint_url=self.s3_endpoint,
            access_key_id=self.s3_access_key_id,
            secret_access_key=self.s3_secret_access_key,
            region=self.s3_region,
            destructive_ok=host in self.allow_destructive,
        )


OPTIONS_BY_NAME: Mapping[str, OptionSpec] = {spec.name: spec for spec in OPTIONS}


def host_list(text: str | None) -> tuple[str, ...]:
    """Hosts of a comma-separated allow-list, trimmed, empty entries dropped."""
    return tuple(h.strip() for h in (text or "").split(",") if h.strip())


def _as_int(value: str | None, spec: OptionSpec) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{spec.cli} expects a whole number, got {value!r}") from exc
