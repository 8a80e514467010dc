"""What the ``drill`` subcommands share: exit codes, targets, locations, options.

Nothing here imports the drill stack (pytest, moto, testcontainers, the providers): the
backup-set commands run on a database host that has only the product's dependencies.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.config import OPTIONS_BY_NAME, DrillConfig, OptionSpec, PgTarget, host_list
from harness.errors import ConfigError
from harness.sets.location import Location, parse_location

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def dsn_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--dsn``."""
    parser.add_argument(
        "--dsn", help="PostgreSQL DSN; or set DRILL_DSN to keep the password off the command line"
    )


def s3_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--s3-endpoint`` and ``--s3-region``."""
    parser.add_argument(
        "--s3-endpoint",
        dest="s3_endpoint",
        help="S3 endpoint URL (keys in DRILL_S3_ACCESS_KEY_ID / DRILL_S3_SECRET_ACCESS_KEY)",
    )
    parser.add_argument("--s3-region", dest="s3_region")


def workdir_option(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--workdir``."""
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help=f"an existing, writable directory where {what} (default: the system temp dir)",
    )


def allow_destructive_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-destructive`` (the CLI's spelling of the allow-list)."""
    spec = OPTIONS_BY_NAME["allow_destructive"]
    parser.add_argument(
        "--allow-destructive",
        dest="allow_destructive",
        metavar="HOST[,HOST]",
        help="hosts this command may replace databases and change existing roles on "
        f"(env {spec.env})",
    )


def target(args: argparse.Namespace) -> PgTarget:
    """The ``--dsn`` / ``DRILL_DSN`` database; destructive steps only for allow-listed hosts.

    Raises:
        ConfigError: no DSN, or a malformed one.

    """
    dsn = args.dsn or os.environ.get(OPTIONS_BY_NAME["dsn"].env)
    if not dsn:
        raise ConfigError("no database given: pass --dsn or set DRILL_DSN")
    parsed = PgTarget.from_dsn(dsn)
    allowed = host_list(
        getattr(args, "allow_destructive", None)
        or os.environ.get(OPTIONS_BY_NAME["allow_destructive"].env)
    )
    return PgTarget.from_dsn(dsn, destructive_ok=parsed.host in allowed)


def config_from(args: argparse.Namespace) -> DrillConfig:
    """Resolve :class:`DrillConfig` from the command line (``--<name>``) and environment."""

    def lookup(spec: OptionSpec) -> str | None:
        value = getattr(args, spec.name, None)
        return str(value) if value is not None else None

    return DrillConfig.resolve(lookup)


def location(args: argparse.Namespace, uri: str) -> Location:
    """A set location; ``s3://`` ones get the endpoint and keys from options and environment.

    Raises:
        ConfigError: an unusable location or missing S3 credentials.

    """
    s3 = config_from(args).external_s3_target() if uri.startswith("s3://") else None
    return parse_location(uri, s3=s3)


def workdir(args: argparse.Namespace) -> Path | None:
    """The ``--workdir`` directory, checked: it must exist and be writable.

    Raises:
        ConfigError: it does not exist, is not a directory, or cannot be written.

    """
    path: Path | None = getattr(args, "workdir", None)
    if path is None:
        return None
    if not path.exists():
        raise ConfigError(f"--workdir {path} does not exist: create it or choose another")
    if not path.is_dir():
        raise ConfigError(f"--workdir {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--workdir {path} is not writable by this user: choose another")
    return path


def progress(line: str) -> None:
    """Print a progress line to stderr (stdout carries the result)."""
    print(line, file=sys.stderr, flush=True)
