"""Find the pinned wrangler and run it: locally on the Workers runtime, or against an account.

The project pins wrangler in ``cloudflare/package.json`` (with its ``package-lock.json``);
``npm ci --prefix cloudflare`` installs it into ``cloudflare/node_modules``, and the harness
runs that copy, never one fetched at run time (no ``npx``). ``DRILL_WRANGLER`` names another
executable.

Every call goes through :func:`harness.proc.run`: an argv list, a timeout, and the
environment for anything secret. With ``--remote`` the API token comes from
``CLOUDFLARE_API_TOKEN`` in the environment, is registered for redaction the moment it is
read, and never appears in argv, logs or messages. Each call starts Node (about a second),
so callers batch: one export, one bulk put, one listing, never one process per row or key.

In local mode wrangler keeps every D1 database, KV namespace and R2 bucket under
``<project>/.wrangler/state``; its logs and temporary files are kept in the project too, and
its telemetry is off (``WRANGLER_SEND_METRICS=false``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ToolError, ToolNotFound
from harness.proc import CompletedRun, run, tail
from harness.redact import get_logger, register_secret

log = get_logger(__name__)

PINNED_VERSION = "4.40.0"
"""The wrangler version ``cloudflare/package.json`` pins (newer ones need Node 22)."""
MIN_NODE_MAJOR = 20
PACKAGE_DIR = "cloudflare"
"""The directory (at the repository root) holding the committed npm project."""
WRANGLER_ENV = "DRILL_WRANGLER"
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"  # noqa: S105 - the variable's name, not a token
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
INSTALL_HINT = (
    f"run `npm ci --prefix {PACKAGE_DIR}` in the repository (installs wrangler "
    f"{PINNED_VERSION}) or set {WRANGLER_ENV} to a wrangler executable"
)
DEFAULT_TIMEOUT = 600.0

_RELATIVE_BIN = Path(PACKAGE_DIR, "node_modules", ".bin", "wrangler")
_VERSIONS: dict[Path, str] = {}  # executable -> version: each call costs a Node start


def node_problem(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """Why wrangler cannot run on this machine (no Node.js, or one too old); None when it can.

    Args:
        which: looks an executable up on ``PATH`` (a parameter for tests).

    """
    node = which("node")
    if node is None:
        return (
            f"Node.js is not installed (no `node` on PATH): the Cloudflare drills run "
            f"wrangler, which needs Node {MIN_NODE_MAJOR} or newer; install it, then "
            f"`npm ci --prefix {PACKAGE_DIR}`"
        )
    try:
        text = run([node, "--version"], timeout=30).stdout.strip()
    except ToolError as exc:
        return f"`node --version` failed ({exc}); the Cloudflare drills need Node {MIN_NODE_MAJOR}+"
    match = re.match(r"v?(\d+)\.", text)
    if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        return (
            f"Node.js {text or '(unknown version)'} is too old: wrangler {PINNED_VERSION} "
            f"needs Node {MIN_NODE_MAJOR} or newer"
        )
    return None


def find_wrangler(
    search_from: Sequence[Path] = (), *, environ: dict[str, str] | None = None
) -> Path:
    """The wrangler executable: ``DRILL_WRANGLER``, else the project's pinned copy.

    The pinned copy is ``cloudflare/node_modules/.bin/wrangler`` in the first of
    ``search_from``, the working directory, or the directory holding this package (an
    editable install), or any of their parents.

    Args:
        search_from: directories to look in first (a repository root).
        environ: the environment to read (default ``os.environ``).

    Raises:
        ToolNotFound: none was found, or ``DRILL_WRANGLER`` names no executable.

    """
    env = os.environ if environ is None else environ
    named = env.get(WRANGLER_ENV)
    if named:
        path = Path(named)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToolNotFound(f"{WRANGLER_ENV}={named} is not an executable file")
        return path
    here = Path(__file__).resolve().parent
    for base in (*search_from, Path.cwd(), here):
        for directory in (base, *base.resolve().parents):
            candidate = directory / _RELATIVE_BIN
            if candidate.is_file():
                return candidate
    raise ToolNotFound(f"wrangler was not found: {INSTALL_HINT}")


@dataclass(frozen=True)
class Wrangler:
    """One wrangler project (a directory with its ``wrangler.toml``), local or remote.

    Attributes:
        binary: the wrangler executable.
        project: the project directory; commands run there, local state lives below it.
        remote: act on the Cloudflare account (``--remote``) instead of local state.
        config: the configuration file, when not ``project/wrangler.toml``.
        timeout: seconds any one call may take.

    """

    binary: Path
    project: Path
    remote: bool = False
    config: Path | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def mode_flag(self) -> str:
        """``--remote`` or ``--local``: every data command names its side explicitly."""
        return "--remote" if self.remote else "--local"

    @property
    def where(self) -> str:
        """Printable: which side the commands act on."""
        if self.remote:
            return "the Cloudflare account (--remote)"
        return f"local state under {self.project / '.wrangler' / 'state'}"

    def env(self) -> dict[str, str]:
        """The environment of every call (the token is read, registered, never returned).

        The child inherits ``CLOUDFLARE_API_TOKEN`` from our own environment; this only
        checks that a remote call will have one and registers it for redaction.

        Raises:
            ConfigError: remote mode without ``CLOUDFLARE_API_TOKEN``.

        """
        token = os.environ.get(TOKEN_ENV, "")
        register_secret(token)  # even locally: the child inherits it
        if self.remote and not token:
            raise ConfigError(
                f"--remote needs an API token in {TOKEN_ENV} (environment only, never on "
                "the command line), with edit rights on D1, Workers KV and R2"
            )
        work = self.project / ".wrangler"
        return {
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_LOG_PATH": str(work / "logs"),
            # Plain text: error messages reach our exceptions and the report.
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            # Never prompt: a question nobody answers would only end in a timeout.
            "CI": "true",
        }

    def command(self, args: Sequence[str | Path]) -> list[str | Path]:
        """The argv of ``wrangler <args>`` (plus ``--config`` when one is named)."""
        argv: list[str | Path] = [self.binary, *args]
        if self.config is not None:
            argv += ["--config", self.config]
        return argv

    def run(
        self,
        args: Sequence[str | Path],
        *,
        timeout: float | None = None,
        check: bool = True,
        stdout_path: Path | None = None,
    ) -> CompletedRun:
        """Run ``wrangler <args>`` in the project directory.

        Args:
            args: the subcommand and its arguments (include :attr:`mode_flag` yourself:
                not every subcommand takes one).
            timeout: seconds (default :attr:`timeout`).
            check: raise on a non-zero exit.
            stdout_path: write standard output to this file byte for byte.

        Raises:
            ConfigError: remote mode without a token.
            ToolFailed: wrangler exited non-zero (its last lines, redacted, in the message).
            ToolTimeout: it ran past the timeout.

        """
        (self.project / ".wrangler").mkdir(parents=True, exist_ok=True)
        return run(
            self.command(args),
            timeout=timeout or self.timeout,
            env=self.env(),
            cwd=self.project,
            check=check,
            stdout_path=stdout_path,
        )

    def json(self, args: Sequence[str | Path], *, what: str, timeout: float | None = None) -> Any:
        """Run a command that prints JSON and return it parsed.

        Raises:
            ToolError: the output holds no JSON document (its tail is in the message).

        """
        result = self.run(args, timeout=timeout)
        return parse_json(result.stdout, what=what)

    def version(self) -> str:
        """The version wrangler reports (``4.40.0``), asked once per executable."""
        known = _VERSIONS.get(self.binary)
        if known is None:
            text = self.run(["--version"], timeout=60).stdout
            match = re.search(r"\d+\.\d+\.\d+", text)
            known = _VERSIONS[self.binary] = match.group(0) if match else text.strip()
        return known


def parse_json(text: str, *, what: str) -> Any:
    """The first JSON document that starts a line of ``text`` (wrangler adds banners around it).

    Args:
        text: the command's standard output.
        what: the command, for the error message.

    Raises:
        ToolError: there is none.

    """
    decoder = json.JSONDecoder()
    for match in re.finditer(r"(?m)^[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        return value
    shown = " | ".join(tail(text, 5).splitlines()) or "(no output)"
    raise ToolError(f"wrangler {what} printed no JSON: {shown}")
