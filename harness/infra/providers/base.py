"""What a drill asks of infrastructure: PostgreSQL servers and an S3 endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.config import PgTarget, S3Target
from harness.infra.pg_server import ServerSettings
from harness.pg.binaries import PgBinaries


@dataclass(frozen=True)
class Fact:
    """One labelled fact about the infrastructure, for logs and reports."""

    label: str
    value: str


class PgServer(Protocol):
    """A running PostgreSQL server a drill can use."""

    @property
    def binaries(self) -> PgBinaries:
        """Client tools whose major version matches the server's."""
        ...

    @property
    def datadir(self) -> Path | None:
        """The data directory when the harness owns it on this machine, else None."""
        ...

    def target(self, dbname: str = "postgres") -> PgTarget:
        """Superuser (or the configured user's) connection details for ``dbname``."""
        ...

    def start(self) -> object:
        """Start the server again after :meth:`stop`."""
        ...

    def stop(self) -> None:
        """Stop the server process (a no-op where the harness does not own it)."""
        ...


class RemoteServer:
    """A server reached over the network whose data directory is not on this machine.

    Subclasses say how (or whether) it starts and stops.
    """

    def __init__(self, target: PgTarget, binaries: PgBinaries) -> None:
        """Wrap ``target``; ``binaries`` are local client tools matching its version."""
        self._target = target
        self._binaries = binaries

    @property
    def binaries(self) -> PgBinaries:
        """Local client tools matching the server's major version."""
        return self._binaries

    @property
    def datadir(self) -> Path | None:
        """Not reachable as a local path: None."""
        return None

    def target(self, dbname: str = "postgres") -> PgTarget:
        """Connection details for ``dbname``."""
        return self._target.with_dbname(dbname)


class Provider(Protocol):
    """Supplies servers and an S3 endpoint, and takes all of them down at the end."""

    name: str

    def pg_server(
        self,
        *,
        name: str,
        major: int | None = None,
        settings: ServerSettings | None = None,
        namespace: str | None = None,
    ) -> PgServer:
        """Start (or hand out) a PostgreSQL server called ``name`` for one drill.

        Args:
            name: the drill's name for the server.
            major: the PostgreSQL major version the drill needs, if any.
            settings: server settings, where the provider owns the server.
            namespace: a prefix unique to this server of this drill; a provider whose
                servers are shared between drills keeps the drill's databases under it.

        """
        ...

    def release(self, server: PgServer, *, keep: bool) -> None:
        """Give a server back: stop it, and delete its files unless ``keep``."""
        ...

    @property
    def s3_throwaway(self) -> bool:
        """True when the S3 endpoint was started for this session (and goes with it)."""
        ...

    def s3_target(self) -> S3Target:
        """The session's S3 endpoint, started on first use."""
        ...

    def facts(self) -> list[Fact]:
        """What is in use: binaries, versions, run-as mode, S3 backend."""
        ...

    def close(self, *, keep: bool = False) -> None:
        """Stop everything still running; delete files unless ``keep``."""
        ...
