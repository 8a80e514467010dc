"""Workers KV through wrangler, in bulk: an adapter of :class:`harness.kv.base.KvStore`.

Each wrangler call starts Node (about a second), so the seed's way (one ``kv key get`` per
key) takes minutes for a few hundred keys. This adapter moves a namespace with a handful of
calls whatever its size:

- ``wrangler kv key list``: every key with its expiration and metadata (one call);
- ``wrangler kv bulk get``: every value (one call locally; 100 keys a call against an
  account, the API's limit);
- ``wrangler kv bulk put`` / ``kv bulk delete``: every write or delete (wrangler splits
  them into requests of 1,000 itself).

``bench/cloudflare_kv.py`` measures the difference against one process per key.

Values are bytes. ``kv bulk get`` returns values as text and wrangler 4.40's local ``kv bulk
put`` stores base64 values as mangled text, so a value that is not UTF-8 goes one process
per key both ways (``kv key get`` into a file, ``kv key put --path``): exact, and rare in a
namespace of sessions and cached JSON. A text value that comes back with U+FFFD (the mark of
bytes that were not UTF-8) is read again that way.

The per-key :class:`KvStore` methods (:meth:`WorkersKv.read`, :meth:`WorkersKv.write`,
:meth:`WorkersKv.delete`) exist for the shared interface and for the benchmark's baseline.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cloudflare.wrangler import Wrangler
from harness.errors import ConfigError, ToolError
from harness.kv.base import KvEntry

REMOTE_GET_BATCH = 100
"""Keys per ``kv bulk get`` against an account (the API's limit)."""
PUT_BATCH = 10_000
"""Entries per ``kv bulk put`` file (wrangler sends them 1,000 a request)."""
MIN_TTL_MS = 60_000
"""Workers KV refuses an expiration less than 60 s away."""
_BINDING = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class KeyInfo:
    """One key as ``kv key list`` reports it."""

    name: str
    expiration: int | None  # Unix seconds
    metadata: Any


class WorkersKv:
    """One Workers KV namespace, named by its binding or its id, local or on an account."""

    def __init__(
        self,
        w: Wrangler,
        *,
        workdir: Path,
        binding: str | None = None,
        namespace_id: str | None = None,
    ) -> None:
        """Name the namespace.

        Args:
            w: the project (its ``wrangler.toml`` declares the binding).
            workdir: scratch space for the bulk files.
            binding: the namespace's binding in ``wrangler.toml``.
            namespace_id: or its id.

        Raises:
            ConfigError: neither or both given, or not a valid name.

        """
        if (binding is None) == (namespace_id is None):
            raise ConfigError("name a KV namespace by its binding or by its id (exactly one)")
        if binding is not None and not _BINDING.fullmatch(binding):
            raise ConfigError(f"{binding!r} is not a binding name (letters, digits, _)")
        if namespace_id is not None and not _ID.fullmatch(namespace_id):
            raise ConfigError(f"{namespace_id!r} is not a KV namespace id")
        self._w = w
        self._workdir = workdir
        self._target = ["--binding", binding] if binding else ["--namespace-id", str(namespace_id)]
        self.name = binding or str(namespace_id)
        self.calls = 0  # wrangler processes started: the cost that matters

    @property
    def location(self) -> str:
        """Printable: the namespace and where it lives."""
        return f"Workers KV {self.name} in {self._w.where}"

    @property
    def value_types(self) -> frozenset[str]:
        """Workers KV holds strings (bytes) only."""
        return frozenset({"string"})

    # -- bulk ---------------------------------------------------------------------------

    def list_keys(self, prefix: str = "") -> list[KeyInfo]:
        """Every key (with expiration and metadata), one wrangler call.

        Raises:
            ToolFailed: wrangler failed.

        """
        args = ["kv", "key", "list", *self._target, self._w.mode_flag]
        if prefix:
            args += ["--prefix", prefix]
        out = self._json(args, "kv key list")
        if not isinstance(out, list):
            raise ToolError(f"wrangler kv key list printed {type(out).__name__}, not a list")
        return [
            KeyInfo(str(k["name"]), k.get("expiration"), k.get("metadata"))
            for k in out
            if isinstance(k, dict) and "name" in k
        ]

    def read_all(self) -> list[KvEntry]:
        """Every entry of the namespace, sorted by key, in a handful of wrangler calls.

        Raises:
            ToolFailed: wrangler failed.

        """
        infos = self.list_keys()
        values = self._bulk_values([i.name for i in infos])
        entries = []
        for info in infos:
            text = values.get(info.name)
            if text is None:
                continue  # deleted between the listing and the read
            data = text.encode()
            if "\ufffd" in text:
                raw = self._raw_value(info.name)  # maybe bytes that were not UTF-8
                if raw is None:
                    continue
                data = raw
            entries.append(_entry(info, data))
        return sorted(entries, key=lambda e: e.key)

    def write_many(self, entries: Iterable[KvEntry], *, now_ms: int | None = None) -> int:
        """Write every entry: text values in bulk, others one by one; return how many.

        Entries whose expiry is less than a minute away (or past) are skipped: Workers KV
        refuses them, and they would be gone by the time anyone read them.

        Raises:
            ConfigError: an entry that is not a ``string``, or a key that is not UTF-8.
            ToolFailed: wrangler failed.

        """
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        batch: list[dict[str, Any]] = []
        written = 0
        for entry in entries:
            if entry.expires_at_ms is not None and entry.expires_at_ms < now + MIN_TTL_MS:
                continue
            key, value = _key_text(entry), _value(entry)
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                self.write(entry)
                written += 1
                continue
            item: dict[str, Any] = {"key": key, "value": text}
            if entry.expires_at_ms is not None:
                item["expiration"] = -(-entry.expires_at_ms // 1000)
            if entry.metadata is not None:
                item["metadata"] = entry.metadata
            batch.append(item)
            if len(batch) >= PUT_BATCH:
                written += self._bulk("put", batch)
                batch = []
        if batch:
            written += self._bulk("put", batch)
        return written

    def delete_many(self, keys: Iterable[bytes | str]) -> int:
        """Delete every key in bulk; return how many were named.

        Raises:
            ToolFailed: wrangler failed.

        """
        names = [k.decode() if isinstance(k, bytes) else k for k in keys]
        done = 0
        for start in range(0, len(names), PUT_BATCH):
            done += self._bulk("delete", names[start : start + PUT_BATCH])
        return done

    # -- the per-key KvStore interface --------------------------------------------------

    def keys(self) -> Iterator[bytes]:
        """Every key."""
        for info in self.list_keys():
            yield info.name.encode()

    def read(self, key: bytes) -> KvEntry | None:
        """One entry: its listing (expiration, metadata) and its value, two wrangler calls."""
        name = key.decode()
        info = next((i for i in self.list_keys(name) if i.name == name), None)
        if info is None:
            return None
        raw = self._raw_value(name)
        return None if raw is None else _entry(info, raw)

    def write(self, entry: KvEntry) -> None:
        """One entry, one wrangler call (``kv key put --path``: exact bytes).

        Raises:
            ConfigError: not a ``string`` entry, or a key that is not UTF-8.

        """
        key, value = _key_text(entry), _value(entry)
        path = self._scratch("value.bin")
        path.write_bytes(value)
        args = ["kv", "key", "put", key, "--path", path, *self._target, self._w.mode_flag]
        if entry.expires_at_ms is not None:
            args += ["--expiration", str(-(-entry.expires_at_ms // 1000))]
        if entry.metadata is not None:
            args += ["--metadata", json.dumps(entry.metadata)]
        self._call(args)

    def delete(self, key: bytes) -> None:
        """Delete one key, one wrangler call."""
        self._call(["kv", "key", "delete", key.decode(), *self._target, self._w.mode_flag])

    # -- internals -----------------------------------------------------------------------

    def _bulk_values(self, names: Sequence[str]) -> dict[str, str | None]:
        if not names:
            return {}
        size = REMOTE_GET_BATCH if self._w.remote else len(names)
        values: dict[str, str | None] = {}
        for start in range(0, len(names), size):
            path = self._scratch("get.json")
            path.write_text(json.dumps(list(names[start : start + size])), encoding="utf-8")
            args = ["kv", "bulk", "get", path, *self._target, self._w.mode_flag]
            out = self._json(args, "kv bulk get")
            if not isinstance(out, dict):
                raise ToolError(f"wrangler kv bulk get printed {type(out).__name__}, not an object")
            for name, got in out.items():
                # Locally {"key": {"value": ...}}; the account's API answers {"key": value}.
                value = got.get("value") if isinstance(got, dict) else got
                values[str(name)] = None if value is None else str(value)
        return values

    def _raw_value(self, name: str) -> bytes | None:
        path = self._scratch("raw.bin")
        args = ["kv", "key", "get", name, *self._target, self._w.mode_flag]
        result = self._call(args, stdout_path=path)
        data = path.read_bytes()
        # wrangler prints "Value not found" (exit 0) for a missing key.
        if not data and "not found" in (result.stderr + result.stdout).lower():
            return None
        return data

    def _bulk(self, op: str, items: list[Any]) -> int:
        path = self._scratch(f"{op}.json")
        path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        force = ["--force"] if op == "delete" else []  # never ask: nobody would answer
        self._call(["kv", "bulk", op, path, *self._target, self._w.mode_flag, *force])
        return len(items)

    def _json(self, args: list[Any], what: str) -> Any:
        self.calls += 1
        return self._w.json(args, what=what)

    def _call(self, args: list[Any], *, stdout_path: Path | None = None) -> Any:
        self.calls += 1
        return self._w.run(args, stdout_path=stdout_path)

    def _scratch(self, name: str) -> Path:
        self._workdir.mkdir(parents=True, exist_ok=True)
        return self._workdir / f"kv-{self.name}-{time.monotonic_ns()}-{name}"


def _entry(info: KeyInfo, data: bytes) -> KvEntry:
    expires = int(info.expiration) * 1000 if info.expiration else None
    return KvEntry.string(info.name.encode(), data, expires_at_ms=expires, metadata=info.metadata)


def _key_text(entry: KvEntry) -> str:
    try:
        return entry.key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the key {entry.key[:40]!r} is not UTF-8 text: Workers KV keys are strings"
        ) from exc


def _value(entry: KvEntry) -> bytes:
    if entry.type != "string" or not isinstance(entry.value, bytes):
        raise ConfigError(
            f"the {entry.type} entry {entry.key[:40]!r} cannot go into Workers KV, which holds "
            "strings only"
        )
    return entry.value
