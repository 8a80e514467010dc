"""The throwaway servers point-in-time recoveries run in.

:func:`harness.sets.pitr.recover` builds a data directory and needs a server to replay WAL
in; the backup-set product must not depend on the drill stack's server machinery, so the
recovery takes a maker of servers (:class:`harness.sets.pitr.ServerMaker`), and this module
gives one made from a cluster template: ``recover(..., servers=RecoveryServers(template))``.
"""

from __future__ import annotations

from pathlib import Path

from harness.infra.pg_server import ClusterTemplate, ServerSettings, ThrowawayServer


class RecoveryServers:
    """Makes recovery servers with the binaries and identity of a cluster template."""

    def __init__(self, template: ClusterTemplate) -> None:
        """Use ``template``'s binaries (the recovered set's major version) and identity."""
        self.template = template
        self.binaries = template.binaries

    def __call__(
        self, workdir: Path, settings: tuple[tuple[str, str], ...], *, start_timeout: float
    ) -> ThrowawayServer:
        """A server (not started) on ``workdir/data`` with ``settings`` added."""
        return ThrowawayServer(
            self.template,
            workdir=workdir,
            settings=ServerSettings(extra=settings),
            start_timeout=start_timeout,
        )
