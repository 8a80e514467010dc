"""What the store commands (``objects``, ``kv``, ``repo``, ``retention``) share.

Secrets come from the environment only: S3 keys from ``DRILL_S3_ACCESS_KEY_ID`` /
``DRILL_S3_SECRET_ACCESS_KEY``, the Redis password from ``DRILL_REDIS_PASSWORD``, the
signing key from ``DRILL_SIGNING_KEY``. Long copies print progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable

from harness.cli.common import EXIT_FAILED, EXIT_OK, config_from, progress, s3_options
from harness.errors import ConfigError
from harness.objects.bucket import Bucket
from harness.sets import signing
from harness.sets.location import parse_location
from harness.storage.base import ObjectStore
from harness.verify.checks import CheckResult, failures, render

_EVERY = 2.0  # seconds between progress lines


def backup_location_options(parser: argparse.ArgumentParser) -> None:
    """Add the S3 endpoint options and ``--kind``."""
    s3_options(parser)


def bucket(args: argparse.Namespace, uri: str) -> Bucket:
    """``s3://bucket[/prefix]`` with the endpoint and keys of the command line and environment.

    Raises:
        ConfigError: not an s3:// URI, or no credentials.

    """
    if not uri.startswith("s3://"):
        raise ConfigError(f"{uri!r} is not a bucket: use s3://bucket or s3://bucket/prefix")
    return Bucket.parse(uri, config_from(args).external_s3_target())


def backup_store(args: argparse.Namespace, uri: str) -> ObjectStore:
    """The backup store: ``s3://bucket`` or a local directory (sets go under ``backups/``).

    Raises:
        ConfigError: an S3 location with a prefix, or no credentials.

    """
    s3 = config_from(args).external_s3_target() if uri.startswith("s3://") else None
    location = parse_location(uri, s3=s3)
    if location.prefix:
        raise ConfigError(
            f"{uri} has a prefix; name the bucket alone (sets go under backups/<kind>/)"
        )
    return location.store()


def signing_key() -> bytes | None:
    """``DRILL_SIGNING_KEY``, when set."""
    return signing.configured_key()


def env(name: str) -> str | None:
    """A variable of the environment (secrets are read from there, never from argv)."""
    return os.environ.get(name) or None


def progress_printer(what: str) -> Callable[..., None]:
    """A callback printing ``what: done/total`` to stderr at most every two seconds."""
    last = [0.0]

    def show(done: int, total: int, *rest: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= _EVERY:
            last[0] = now
            extra = f", {rest[0] / 1048576:.1f} MiB copied" if rest else ""
            progress(f"{what}: {done}/{total} objects{extra}")

    return show


def report(checks: Iterable[CheckResult]) -> int:
    """Print the checks; 0 when every critical one passed, else 1."""
    results = list(checks)
    print(render(results))
    return EXIT_FAILED if failures(results) else EXIT_OK
