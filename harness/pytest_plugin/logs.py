"""What a drill session's logs and terminal show: every secret masked, progress live.

Harness loggers mask their own records (:func:`harness.redact.get_logger`); the filters here
also cover records of other libraries on their way to pytest's handlers (the log file, the
live log, the captured log in the reports), and the values of environment variables named
like secrets, which any code may echo.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import pytest

from harness.redact import RedactingFilter, redact, register_secret

PROGRESS_ONLY = pytest.StashKey[bool]()
"""Set when the live log was turned on here: it then shows progress and warnings only."""
PROGRESS_LOGGERS = ("harness.drill.run",)


# Environment variables whose values are secrets by their name (GITHUB_TOKEN, PGPASSWORD,
# AWS_SECRET_ACCESS_KEY, DRILL_SIGNING_KEY, MY_API_KEY ...); key *ids* are not secrets.
SECRET_NAMES = re.compile(
    r"(?i)(passw|secret|token|credential|private_?key|api_?key|signing_?key|access_?key(?!_?id))"
)


def register_environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Register the values of secret-named environment variables for redaction.

    A drill's code, a library's log line or a traceback may echo them; every output the
    session writes is masked through :func:`harness.redact.redact`.

    Returns:
        The names whose values were registered (never the values).

    """
    env = os.environ if environ is None else environ
    names = sorted(name for name, value in env.items() if value and SECRET_NAMES.search(name))
    for name in names:
        register_secret(env[name])
    return names


def redact_metadata(metadata: dict[str, Any]) -> None:
    """Mask secrets in pytest-metadata's environment table (pytest-html embeds it)."""
    for key, value in list(metadata.items()):
        if isinstance(value, dict):
            redact_metadata(value)
        elif isinstance(value, str):
            metadata[key] = redact(value)


def redact_log_handlers(config: pytest.Config) -> None:
    """Mask secrets in every record pytest's handlers see (file, live, captured).

    Harness loggers redact their own records; these filters also cover records of other
    libraries that end up in the log file, the terminal or the report.
    """
    plugin = config.pluginmanager.get_plugin("logging-plugin")
    for name in ("log_file_handler", "log_cli_handler", "caplog_handler", "report_handler"):
        handler = getattr(plugin, name, None)
        if handler is not None and not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    live = getattr(plugin, "log_cli_handler", None)
    if live is not None and config.stash.get(PROGRESS_ONLY, False):
        live.addFilter(_progress_only)


def _progress_only(record: logging.LogRecord) -> bool:
    """The live log shows phase progress and warnings; the log file keeps everything."""
    return record.levelno >= logging.WARNING or record.name.startswith(PROGRESS_LOGGERS)
