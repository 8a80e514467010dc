"""Run PostgreSQL server processes as a non-root identity when the harness runs as root.

``initdb``, ``pg_ctl`` and ``postgres`` refuse to run as root. Two ways out, in order:

- **userns**: a user namespace in which our uid maps to ``nobody`` (65534). The server sees
  itself as an ordinary user, files on disk stay root-owned (root cleans up freely), and no
  system account is touched. Blocked under some container seccomp profiles.
- **system-user**: a dedicated unprivileged system account, created on first use; the data
  directory is handed to it with chown. Its parent directories must be traversable by it, so
  servers in this mode live in their own directory under the system temp dir.

Client tools (psql, pg_dump, pg_restore) keep running as the caller.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from harness.errors import ConfigError, ToolError
from harness.proc import run
from harness.redact import get_logger

log = get_logger(__name__)

NOBODY_UID = 65534
SYSTEM_USER = "drillpg"
_USERNS_PREFIX = ("unshare", "--user", f"--map-user={NOBODY_UID}", f"--map-group={NOBODY_UID}")


@dataclass(frozen=True)
class ServerIdentity:
    """Who server processes run as, and how to get there from the caller."""

    mode: str  # "direct", "userns" or "system-user"
    user: str | None = None

    def wrap(self, argv: Sequence[str | PathLike[str]]) -> list[str]:
        """Return ``argv`` prefixed as needed to run it under this identity."""
        args = [os.fspath(a) for a in argv]
        return [*_USERNS_PREFIX, *args] if self.mode == "userns" else args

    @property
    def run_user(self) -> str | None:
        """The system user to pass to :func:`harness.proc.run`, if any."""
        return self.user if self.mode == "system-user" else None

    @property
    def needs_own_tmpdir(self) -> bool:
        """True when server directories must live outside the caller's private temp dirs."""
        return self.mode == "system-user"

    def hand_over(self, path: Path) -> None:
        """Give ``path`` (recursively) to the server identity, where that needs a chown."""
        if self.mode != "system-user" or self.user is None:
            return
        entry = pwd.getpwnam(self.user)
        for root, dirs, files in os.walk(path):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in (*dirs, *files):
                os.chown(Path(root) / name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def describe(self) -> str:
        """One line for logs and reports."""
        if self.mode == "userns":
            return f"running as root: PostgreSQL runs in a user namespace as uid {NOBODY_UID}"
        if self.mode == "system-user":
            return f"running as root: PostgreSQL runs as system user {self.user!r}"
        return f"PostgreSQL runs as the current user (uid {os.geteuid()})"


def choose_identity(requested: str = "auto") -> ServerIdentity:
    """Pick how server processes run, and log the choice in one line.

    Args:
        requested: ``auto`` (user namespace, else system user), ``userns`` or ``system-user``.

    Raises:
        ConfigError: the requested mode cannot work on this machine.

    """
    if os.geteuid() != 0:
        identity = ServerIdentity("direct")
    elif requested == "userns" or (requested == "auto" and userns_available()):
        if not userns_available():
            raise ConfigError(
                "--drill-run-as=userns was requested but user namespaces are not available "
                "here (unshare missing or blocked); use --drill-run-as=system-user"
            )
        identity = ServerIdentity("userns")
    else:
        ensure_system_user(SYSTEM_USER)
        identity = ServerIdentity("system-user", SYSTEM_USER)
    log.info(identity.describe())
    return identity


def userns_available() -> bool:
    """Tell whether ``unshare --user`` mapped to nobody works on this machine."""
    if shutil.which("unshare") is None:
        return False
    try:
        return run([*_USERNS_PREFIX, "true"], timeout=10, check=False).returncode == 0
    except ToolError:
        return False


def ensure_system_user(name: str) -> None:
    """Create an unprivileged system account ``name`` unless it exists.

    Raises:
        ConfigError: the account does not exist and cannot be created.

    """
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    try:
        run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            timeout=30,
        )
    except ToolError as exc:
        raise ConfigError(
            f"PostgreSQL cannot run as root and user namespaces are unavailable; creating "
            f"the system user {name!r} failed ({exc}). Create it yourself "
            f"(useradd --system {name}) or run the harness as a non-root user."
        ) from exc
    log.info("created system user %r to run PostgreSQL servers", name)
