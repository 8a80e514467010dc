"""moto's S3 in server mode: a real HTTP endpoint in this process, in memory, fast.

What moto does not enforce (so drills that depend on these use SeaweedFS or MinIO):
any access key is accepted; Content-MD5 and request checksums are not validated; COMPLIANCE
retention can be shortened; default bucket retention applies only to an empty bucket; and in
server mode ``get_object_retention`` answers HTTP 500 (``head_object`` reports retention).
"""

from __future__ import annotations

import secrets
import time
from typing import Self

import httpx

from harness.config import S3Target
from harness.errors import ConfigError
from harness.infra.lifecycle import Throwaway
from harness.infra.ports import LOOPBACK
from harness.redact import get_logger

log = get_logger(__name__)

NOT_ENFORCED = (
    "access keys (any key is accepted)",
    "Content-MD5 and request checksums",
    "COMPLIANCE retention cannot be shortened",
)


class MotoServer(Throwaway):
    """``ThreadedMotoServer`` on 127.0.0.1 with an OS-chosen port."""

    def __init__(self) -> None:
        """Prepare; nothing runs until :meth:`start`."""
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise ConfigError(
                "moto's server mode is not installed; `pip install 'moto[server]'` or choose "
                "--drill-s3=seaweedfs"
            ) from exc
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
        self.endpoint_url = ""
        self.start_seconds = 0.0
        self._running = False

    def start(self) -> Self:
        """Start serving and record the endpoint."""
        started = time.monotonic()
        self._server.start()
        self._running = True
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.start_seconds = time.monotonic() - started
        log.info("moto S3 up on %s (not enforced: %s)", self.endpoint_url, "; ".join(NOT_ENFORCED))
        return self

    def target(self) -> S3Target:
        """Endpoint with random credentials (moto accepts any)."""
        return S3Target(
            endpoint_url=self.endpoint_url,
            access_key_id="drill" + secrets.token_hex(6),
            secret_access_key=secrets.token_urlsafe(24),
            destructive_ok=True,
        )

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        """Stop serving. Idempotent."""
        if self._running:
            self._server.stop()
            self._running = False

    def remove(self) -> None:
        """Same as :meth:`stop`: moto keeps nothing on disk."""
        self.stop()
