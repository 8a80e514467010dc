"""Every exception the harness raises; only this module defines exceptions.

The tree::

    DrillError
    ├── ConfigError                 bad option, DSN, profile, or unusable environment
    │   ├── ProviderUnavailable     a requested provider cannot run here (no Docker engine ...)
    │   └── UnsafeTargetError       a destructive step aimed at a target not allowed to take it
    ├── ToolError
    │   ├── ToolNotFound            an executable is missing
    │   ├── ToolFailed              an executable exited non-zero
    │   └── ToolTimeout             an executable ran past its timeout
    ├── WaitTimeout                 a condition did not become true in time
    ├── ServerError
    │   ├── ServerStartError        a throwaway server did not come up
    │   └── ConnectError            a PostgreSQL server refused or could not be reached
    ├── StorageError
    │   ├── ObjectNotFound
    │   ├── StorageUnreachable      the S3 endpoint does not answer
    │   └── StorageAuthError        the S3 endpoint rejected the credentials
    ├── ManifestError               a backup set's manifest is unreadable or was modified
    ├── BackupError                 carries .phase
    ├── RestoreError                carries .phase
    └── VerificationFailed          carries .checks

Messages say what failed, where, and what to do next. They never contain secrets: callers
pass text through :func:`harness.redact.redact` before it reaches an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class DrillError(Exception):
    """Root of every error the harness raises on purpose."""


class ConfigError(DrillError):
    """An option, DSN or environment profile is wrong, or the machine lacks a prerequisite."""


class ProviderUnavailable(ConfigError):
    """A requested infrastructure provider cannot run on this machine."""


class UnsafeTargetError(ConfigError):
    """A destructive step was aimed at a target that is not allowed to take it."""


class ToolError(DrillError):
    """An external executable could not be run to completion."""


class ToolNotFound(ToolError):
    """An executable is missing."""


class ToolFailed(ToolError):
    """An executable exited with a non-zero status."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr_tail: str) -> None:
        """Record the failed command.

        Args:
            argv: the command, already redacted.
            returncode: its exit status.
            stderr_tail: the last lines of its standard error, already redacted.

        """
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(
            f"{argv[0]} exited with status {returncode}: {stderr_tail.strip() or '(no output)'}"
        )


class ToolTimeout(ToolError):
    """An executable ran past its timeout and was killed."""


class WaitTimeout(DrillError):
    """A condition polled by :func:`harness.waiting.wait_until` never became true."""


class ServerError(DrillError):
    """A PostgreSQL server misbehaved."""


class ServerStartError(ServerError):
    """A throwaway server did not start; the message carries its log tail."""


class ConnectError(ServerError):
    """A PostgreSQL server could not be reached or refused the login."""


class StorageError(DrillError):
    """An object store operation failed."""


class ObjectNotFound(StorageError):
    """The requested object does not exist."""


class StorageUnreachable(StorageError):
    """The object store endpoint did not answer."""


class StorageAuthError(StorageError):
    """The object store rejected the credentials."""


class ManifestError(DrillError):
    """A backup set's manifest cannot be read, or contradicts itself."""


class _PhasedError(DrillError):
    def __init__(self, message: str, *, phase: str) -> None:
        self.phase = phase
        super().__init__(f"{phase}: {message}")


class BackupError(_PhasedError):
    """A backup failed; ``phase`` names the step that was running."""


class RestoreError(_PhasedError):
    """A restore failed; ``phase`` names the step that was running."""


class VerificationFailed(DrillError):
    """One or more critical checks failed; ``checks`` holds every result."""

    def __init__(self, message: str, *, checks: Sequence[Any]) -> None:
        self.checks = tuple(checks)
        super().__init__(message)
