"""A loopback Worker that opens local R2 buckets to bulk listing and transfers.

wrangler 4.40 can put, get and delete one R2 object per process (about a second each) and
cannot list a bucket at all (the ``wrangler r2 object list`` of the backup guide does not
exist). A backup has to enumerate the bucket, and a restore of a few hundred images must not
take minutes, so local buckets are reached through a small Worker run by ``wrangler dev`` on
127.0.0.1: the real Workers runtime with real R2 bindings, over the same local state the
``wrangler r2 object`` commands use (``--persist-to``), one process for the whole transfer.

The Worker gets a configuration of its own, generated here with nothing but the buckets
(``B0``, ``B1``... bound to their names), so a project's ``main``, build step and other
bindings never run. It answers::

    GET    /r2/<binding>/list?cursor=C        keys, sizes, ETags, content types, metadata
    GET    /r2/<binding>/object?key=K         the bytes (404 when absent)
    PUT    /r2/<binding>/object?key=K         store the body (x-bridge-content-type, -meta)
    POST   /r2/<binding>/delete               delete a JSON list of keys

On an account (``--remote``) buckets are reached through R2's S3 API instead
(:mod:`harness.cloudflare.r2`); nothing is deployed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.client import HTTPResponse
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import quote

from harness.cloudflare.wrangler import Wrangler
from harness.errors import ConfigError, ObjectNotFound, StorageError, ToolFailed, WaitTimeout
from harness.proc import Process, pid_alive, spawn, stop_process, tail
from harness.redact import get_logger
from harness.waiting import wait_until

log = get_logger(__name__)

SCRIPT = r"""
const json = (body, status = 200) => Response.json(body, { status });

async function r2(request, bucket, op, url) {
  const key = url.searchParams.get("key");
  if (op === "list") {
    const listed = await bucket.list({
      cursor: url.searchParams.get("cursor") || undefined,
      limit: 1000,
      include: ["httpMetadata", "customMetadata"],
    });
    return json({
      objects: listed.objects.map((o) => ({
        key: o.key, size: o.size, etag: o.etag,
        content_type: o.httpMetadata?.contentType ?? null,
        metadata: o.customMetadata ?? {},
      })),
      cursor: listed.truncated ? listed.cursor : null,
    });
  }
  if (op === "object" && request.method === "GET") {
    const obj = await bucket.get(key);
    if (obj === null) return json({ error: "not found" }, 404);
    return new Response(obj.body, {
      headers: {
        "x-bridge-etag": obj.etag,
        "x-bridge-content-type": obj.httpMetadata?.contentType ?? "",
        "x-bridge-meta": JSON.stringify(obj.customMetadata ?? {}),
      },
    });
  }
  if (op === "object" && request.method === "PUT") {
    const ct = request.headers.get("x-bridge-content-type");
    const put = await bucket.put(key, await request.arrayBuffer(), {
      httpMetadata: ct ? { contentType: ct } : undefined,
      customMetadata: JSON.parse(request.headers.get("x-bridge-meta") || "{}"),
    });
    return json({ key: put.key, size: put.size, etag: put.etag });
  }
  if (op === "delete" && request.method === "POST") {
    const keys = await request.json();
    for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000));
    return json({ deleted: keys.length });
  }
  return json({ error: "unknown operation" }, 400);
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, area, binding, op] = url.pathname.split("/");
    if (area === "health") return new Response("ok");
    if (area === "r2" && env[binding]) {
      try {
        return await r2(request, env[binding], op, url);
      } catch (e) {
        return json({ error: String(e) }, 500);
      }
    }
    return json({ error: `no bucket bound as ${binding}` }, 404);
  },
};
"""

_READY = re.compile(r"Ready on http://127\.0\.0\.1:(\d+)")
_STOP_GRACE = 10.0
_REQUEST_TIMEOUT = 120.0


class Bridge:
    """``wrangler dev`` running the bridge Worker over a project's local R2 state."""

    def __init__(
        self,
        w: Wrangler,
        buckets: Sequence[str],
        *,
        workdir: Path,
        start_timeout: float = 60.0,
    ) -> None:
        """Prepare (nothing starts until :meth:`start`).

        Args:
            w: the project whose local state holds the buckets (local mode only).
            buckets: the bucket names to open.
            workdir: where the bridge's configuration and log go.
            start_timeout: seconds to wait for the Worker.

        Raises:
            ConfigError: ``w`` is remote, or no bucket is named.

        """
        if w.remote:
            raise ConfigError("the bridge opens local buckets only; remote R2 uses its S3 API")
        if not buckets:
            raise ConfigError("name at least one R2 bucket")
        self._w = w
        self._bindings = {name: f"B{i}" for i, name in enumerate(buckets)}
        self._dir = workdir
        self._timeout = start_timeout
        self._proc: Process | None = None
        self._starts = 0
        self.url = ""

    def binding(self, bucket: str) -> str:
        """The binding the bridge gives ``bucket``.

        Raises:
            ConfigError: the bridge was not opened with that bucket.

        """
        try:
            return self._bindings[bucket]
        except KeyError:
            raise ConfigError(f"the bridge was not opened with bucket {bucket!r}") from None

    def start(self) -> Self:
        """Write the Worker and its configuration, start ``wrangler dev``, wait until it answers.

        Raises:
            ToolFailed: wrangler exited before it was ready (its log tail in the message).
            WaitTimeout: it did not become ready in time.

        """
        self._dir.mkdir(parents=True, exist_ok=True)
        (self._dir / "bridge.js").write_text(SCRIPT, encoding="utf-8")
        buckets = "".join(
            f'\n[[r2_buckets]]\nbinding = "{b}"\nbucket_name = {json.dumps(name)}\n'
            for name, b in self._bindings.items()
        )
        config = self._dir / "wrangler.toml"
        config.write_text(
            'name = "drill-bridge"\nmain = "bridge.js"\ncompatibility_date = "2025-09-01"\n'
            + buckets,
            encoding="utf-8",
        )
        # The runtime's request.cf placeholder, so that wrangler dev never fetches one.
        cf = self._dir / "node_modules" / ".mf" / "cf.json"
        cf.parent.mkdir(parents=True, exist_ok=True)
        cf.write_text("{}", encoding="utf-8")
        state = self._w.project / ".wrangler" / "state"
        self._starts += 1  # a log per start: an old "Ready on" line must not be read again
        log_path = self._dir / f"bridge-{self._starts}.log"
        argv: list[str | Path] = [
            self._w.binary, "dev", "--config", config, "--local", "--persist-to", state,
            "--ip", "127.0.0.1", "--port", "0", "--inspector-port", "0",
            "--show-interactive-dev-session=false", "--log-level", "info",
        ]  # fmt: skip
        self._proc = spawn(argv, log_path=log_path, env=self._w.env(), cwd=self._dir)
        try:
            port = wait_until(
                lambda: self._ready(log_path),
                timeout=self._timeout,
                what="the R2 bridge (wrangler dev) to answer",
                interval=0.1,
            )
        except (WaitTimeout, ToolFailed):
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{port}"
        log.info("R2 bridge on %s for %s", self.url, ", ".join(self._bindings))
        return self

    def _ready(self, log_path: Path) -> int | None:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        match = _READY.search(text)
        if match:
            return int(match.group(1))
        if self._proc is not None and self._proc.poll() is not None:
            raise ToolFailed(["wrangler", "dev"], self._proc.returncode, tail(text))
        return None

    def stop(self) -> None:
        """Stop wrangler dev and the runtime it started (its whole process group)."""
        proc, self._proc = self._proc, None
        self.url = ""
        if proc is None:
            return
        stop_process(proc, grace=_STOP_GRACE)
        # workerd children leave shortly after wrangler; whatever stays is killed by group.
        deadline = time.monotonic() + _STOP_GRACE
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        cursor: str | None = None,
        body: bytes | IO[bytes] | None = None,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> HTTPResponse:
        """Send one request to the bridge; the open response (read it, then close it).

        Raises:
            ObjectNotFound: 404 for a key.
            StorageError: any other failure, naming the operation.

        """
        if not self.url:
            raise StorageError("the R2 bridge is not running; start it first")
        query = []
        if key is not None:
            query.append("key=" + quote(key, safe=""))
        if cursor:
            query.append("cursor=" + quote(cursor, safe=""))
        url = self.url + path + ("?" + "&".join(query) if query else "")
        sent = dict(headers or {})
        if length is not None:
            sent["Content-Length"] = str(length)
        req = urllib.request.Request(url, data=body, method=method, headers=sent)  # noqa: S310
        try:
            response: HTTPResponse = urllib.request.urlopen(  # noqa: S310 - loopback only
                req, timeout=_REQUEST_TIMEOUT
            )
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace")
            if exc.code == 404 and key is not None:
                raise ObjectNotFound(f"R2 object {key!r} does not exist") from exc
            raise StorageError(f"R2 bridge {method} {path}: HTTP {exc.code} {detail}") from exc
        except OSError as exc:
            raise StorageError(f"R2 bridge {method} {path}: {exc}") from exc
        return response


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid_alive(pgid) or _any_member(pgid)


def _any_member(pgid: int) -> bool:
    # killpg(0) succeeds while zombies remain; look for a live member instead.
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
