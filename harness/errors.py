"""Every exception the harness raises; only this module defines exceptions.

The tree::

    DrillError
    ├── ConfigError                 bad option, DSN, profile, or unusable environment
    │   ├── ProviderUnavailable     a requested provider cannot run here (no Docker engine ...)
    │   ├── UnsupportedByProvider   a drill needs what its provider cannot give (settings ...)
    │   └── UnsafeTargetError       a destructive step aimed at a target not allowed to take it
    ├── ToolError
    │   ├── ToolNotFound            an executable is missing
    │   ├── ToolFailed              an executable exited non-zero
    │   └── ToolTimeout             an executable ran past its timeout
    ├── WaitTimeout                 a condition did not become true in time
    ├── ServerError
    │   ├── ServerStartError        a throwaway server did not come up
    │   │   └── PortTaken           its port was taken between our pick and its bind
    │   └── ConnectError            a PostgreSQL server refused or could not be reached
    ├── StorageError
    │   ├── ObjectNotFound
    │   ├── StorageUnreachable      the S3 endpoint does not answer
    │   ├── StorageAuthError        the S3 endpoint rejected the credentials
    │   └── UnsafeObjectError       a key or stored file that would lead outside its store
    ├── ManifestError               a backup set's manifest is unreadable or was modified
    │   ├── GlobalsError            its roles snapshot (globals/roles.json) is not valid
    │   ├── KvExportError           a key-value export file is malformed or truncated
    │   └── SignatureError          a manifest unsigned, or signed with another key
    ├── BackupError                 carries .phase
    ├── RestoreError                carries .phase
    │   ├── WalGapError             archived WAL incomplete; .segment names the gap
    │   ├── RecoveryTargetNotReached  WAL ended before the recovery target
    │   └── TimelineError           the recovery's timeline is not in the archive's history
    ├── VerificationFailed          carries .checks
    └── RetentionRefused            a deletion that retention rules forbid (newest, locked)

Messages say what failed, where, and what to do next. They never contain secrets: callers
pass text through :func:`harness.redact.redact` before it reaches an exception.

A remedy that names an option carries it as an :class:`OptionHint` instead of spelling it:
the pytest plugin and the ``drill`` command spell options differently
(``--drill-allow-destructive=HOST`` against ``--allow-destructive HOST``), so each front end
renders the error with :meth:`DrillError.render`. ``str()`` gives the pytest spelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

FrontEnd = Literal["pytest", "drill"]


@dataclass(frozen=True)
class OptionHint:
    """A remedy "set option ``option`` to ``value``" that each front end spells its own way."""

    option: str  # the option's name as in harness.config.OPTIONS, e.g. "allow_destructive"
    value: str

    def render(self, front_end: FrontEnd = "pytest") -> str:
        """The remedy as the user of ``front_end`` types it, plus the environment spelling.

        Args:
            front_end: ``pytest`` (``--drill-<name>=value``) or ``drill``
                (``--<name> value``).

        """
        dashed = self.option.replace("_", "-")
        flag = (
            f"--drill-{dashed}={self.value}"
            if front_end == "pytest"
            else f"--{dashed} {self.value}"
        )
        return f"pass {flag} (or set DRILL_{self.option.upper()}={self.value})"


class DrillError(Exception):
    """Root of every error the harness raises on purpose."""

    def __init__(self, *args: object, hint: OptionHint | None = None) -> None:
        """Keep the message and, optionally, a remedy that names an option.

        Args:
            args: the message (as for :class:`Exception`).
            hint: an option that would resolve the error, rendered per front end.

        """
        super().__init__(*args)
        self.hint = hint

    def render(self, front_end: FrontEnd = "pytest") -> str:
        """The message with the hint spelled for ``front_end``."""
        text = super().__str__()
        hint = getattr(self, "hint", None)  # subclasses may bypass __init__ (unpickling)
        return f"{text}; {hint.render(front_end)}" if hint is not None else text

    def __str__(self) -> str:
        return self.render("pytest")


class ConfigError(DrillError):
    """An option, DSN or environment profile is wrong, or the machine lacks a prerequisite."""


class ProviderUnavailable(ConfigError):
    """A requested infrastructure provider cannot run on this machine."""


class UnsupportedByProvider(ConfigError):
    """A drill needs what its provider cannot give: server settings, a local data directory.

    The pytest plugin reports such a drill as skipped, with this message as the reason.
    """


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


class PortTaken(ServerStartError):
    """A throwaway server could not bind its port: another process took it after our pick."""


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


class UnsafeObjectError(StorageError):
    """A key or stored file that could lead outside its store (``..``, a symbolic link ...)."""


class ManifestError(DrillError):
    """A backup set's manifest cannot be read, or contradicts itself."""


class GlobalsError(ManifestError):
    """A backup set's roles snapshot is malformed or holds something a restore must not run."""


class KvExportError(ManifestError):
    """A key-value export (JSON Lines) is malformed, truncated, or altered after writing."""


class SignatureError(ManifestError):
    """A manifest's signature is missing or does not match the configured signing key."""


class _PhasedError(DrillError):
    def __init__(self, message: str, *, phase: str, hint: OptionHint | None = None) -> None:
        self.phase = phase
        super().__init__(f"{phase}: {message}", hint=hint)


class BackupError(_PhasedError):
    """A backup failed; ``phase`` names the step that was running."""


class RestoreError(_PhasedError):
    """A restore failed; ``phase`` names the step that was running."""


class VerificationFailed(DrillError):
    """One or more critical checks failed; ``checks`` holds every result."""

    def __init__(self, message: str, *, checks: Sequence[Any]) -> None:
        self.checks = tuple(checks)
        super().__init__(message)


class WalGapError(RestoreError):
    """The archived WAL needed for a recovery is incomplete; ``segment`` names the first gap."""

    def __init__(self, message: str, *, segment: str, phase: str = "wal-chain") -> None:
        self.segment = segment
        super().__init__(message, phase=phase)


class RecoveryTargetNotReached(RestoreError):
    """Recovery ran out of WAL before the requested target (a target after the archive)."""


class TimelineError(RestoreError):
    """The timeline a recovery needs is missing from the archive or not a descendant of it."""

    def __init__(self, message: str, *, timeline: int, phase: str = "timeline") -> None:
        self.timeline = timeline
        super().__init__(message, phase=phase)


class RetentionRefused(DrillError):
    """A retention run was asked to delete what it must keep (a newest set, a locked object)."""
