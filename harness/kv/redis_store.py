"""Redis as a :class:`~harness.kv.base.KvStore`: every type, byte-exact, with expiries.

Each key is read in one server-side script (atomic: type, value and remaining time are of
the same instant, whatever clients write meanwhile): ``TYPE``, ``PTTL``, ``TIME`` and the
value command of its type. The expiry is made absolute with the *server's* clock, so a
restore a week later expires each key when it would have expired. Writes run in one
``MULTI``/``EXEC`` transaction: ``DEL``, the value (in batches of 1000 elements) and
``PEXPIREAT``. Nothing is decoded: the client runs with ``decode_responses=False``.

Streams keep their entries and ids; consumer groups are not part of the value and are not
exported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.exceptions

from harness.errors import ConfigError, StorageAuthError, StorageError, StorageUnreachable
from harness.kv.base import KvEntry, StreamRecord
from harness.redact import redact, register_secret

PASSWORD_ENV = "DRILL_REDIS_PASSWORD"  # noqa: S105 - the variable's name, not a password
_BATCH = 1000
_READ = """
local t = redis.call('TYPE', KEYS[1])['ok']
local ttl = redis.call('PTTL', KEYS[1])
local now = redis.call('TIME')
local v = false
if t == 'string' then v = redis.call('GET', KEYS[1])
elseif t == 'list' then v = redis.call('LRANGE', KEYS[1], 0, -1)
elseif t == 'set' then v = redis.call('SMEMBERS', KEYS[1])
elseif t == 'hash' then v = redis.call('HGETALL', KEYS[1])
elseif t == 'zset' then v = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
elseif t == 'stream' then v = redis.call('XRANGE', KEYS[1], '-', '+')
end
return {t, ttl, now[1], now[2], v}
"""


@dataclass(frozen=True)
class RedisTarget:
    """How to reach one Redis database. The password never appears in ``repr``."""

    host: str
    port: int
    password: str | None = field(default=None, repr=False)
    db: int = 0
    username: str | None = None

    def __post_init__(self) -> None:
        """Register the password for redaction."""
        if self.password:
            register_secret(self.password)

    @classmethod
    def from_url(cls, url: str, *, password: str | None = None) -> RedisTarget:
        """``redis://host:port/db`` (the password from ``password``, never from the URL).

        Raises:
            ConfigError: not a redis:// URL, a password in it, or a bad port or db.

        """
        parts = urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ConfigError(f"{redact(url)!r} is not a redis://host:port/db URL")
        if parts.password:
            register_secret(parts.password)
            raise ConfigError(
                f"put the Redis password in {PASSWORD_ENV}, not in the URL (command lines are "
                "visible to every user of the machine)"
            )
        try:
            port = parts.port or 6379
            db = int(parts.path.strip("/") or 0)
        except ValueError as exc:
            raise ConfigError(f"{redact(url)!r} has a bad port or database number") from exc
        return cls(parts.hostname, port, password, db, parts.username or None)

    def display(self) -> str:
        """``redis://host:port/db`` (no password)."""
        return f"redis://{self.host}:{self.port}/{self.db}"


def connect(target: RedisTarget, *, timeout: float = 10) -> redis.Redis:
    """A client for ``target`` that returns bytes (nothing is decoded)."""
    return redis.Redis(
        host=target.host,
        port=target.port,
        db=target.db,
        username=target.username,
        password=target.password,
        decode_responses=False,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )


def ping(target: RedisTarget) -> bool:
    """True when the server answers; False while it cannot be reached yet.

    Raises:
        StorageAuthError: it answers but refuses the password.

    """
    client = connect(target, timeout=2)
    try:
        return bool(client.ping())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return False
    except redis.exceptions.AuthenticationError as exc:
        raise StorageAuthError(f"{target.display()} refused the password") from exc
    finally:
        client.close()


def translate(exc: Exception, target: RedisTarget, action: str) -> StorageError:
    """A redis-py error as a :class:`StorageError` saying what to do."""
    where = target.display()
    if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.NoPermissionError):
        return StorageAuthError(f"cannot {action}: {where} refused the login; check {PASSWORD_ENV}")
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return StorageUnreachable(f"cannot {action}: {where} does not answer; is it running?")
    return StorageError(f"cannot {action} on {where}: {redact(str(exc))}")


class RedisStore:
    """One Redis database as a :class:`~harness.kv.base.KvStore`."""

    value_types = frozenset({"string", "list", "set", "hash", "zset", "stream"})

    def __init__(self, target: RedisTarget) -> None:
        """Connect lazily to ``target``."""
        self.target = target
        self.client = connect(target)
        self._read = self.client.register_script(_READ)

    @property
    def location(self) -> str:
        """``redis://host:port/db``."""
        return self.target.display()

    def keys(self) -> Iterator[bytes]:
        """Every key, by ``SCAN`` (a key present throughout is returned at least once)."""
        seen: set[bytes] = set()
        try:
            for key in self.client.scan_iter(count=1000):
                # SCAN may return a key twice (rehashing); callers get each once.
                if key not in seen:
                    seen.add(key)
                    yield key
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self.target, "list keys") from exc

    def read(self, key: bytes) -> KvEntry | None:
        """The entry at ``key``, read atomically; None if it does not exist (any more).

        Raises:
            StorageError: the server refused or failed.

        """
        try:
            kind, ttl, secs, micros, raw = self._read(keys=[key])
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self.target, f"read {key!r}") from exc
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind == "none" or raw is None:
            return None
        now_ms = int(secs) * 1000 + int(micros) // 1000
        kw: dict[str, Any] = {"expires_at_ms": now_ms + int(ttl) if int(ttl) >= 0 else None}
        if kind == "string":
            return KvEntry.string(key, raw, **kw)
        if kind == "list":
            return KvEntry.list_(key, raw, **kw)
        if kind == "set":
            return KvEntry.set_(key, raw, **kw)
        if kind == "hash":
            return KvEntry.hash(key, zip(raw[::2], raw[1::2], strict=True), **kw)
        if kind == "zset":
            scores = (float(s) for s in raw[1::2])
            return KvEntry.zset(key, zip(raw[::2], scores, strict=True), **kw)
        if kind == "stream":
            records = (StreamRecord(i.decode(), _pairs(f)) for i, f in raw)
            return KvEntry.stream(key, records, **kw)
        raise StorageError(f"{self.location}: key {key!r} has the unsupported type {kind}")

    def write(self, entry: KvEntry) -> None:
        """Replace ``entry.key`` with ``entry`` in one transaction.

        Raises:
            ConfigError: the entry has metadata (Redis keys have none).
            StorageError: the server refused or failed.

        """
        if entry.metadata is not None:
            raise ConfigError(f"{self.location}: Redis cannot hold metadata (key {entry.key!r})")
        pipe = self.client.pipeline(transaction=True)
        key, value = entry.key, entry.value
        pipe.delete(key)
        if isinstance(value, bytes):
            pipe.set(key, value)
        elif entry.type == "list":
            for batch in _batches(value):
                pipe.rpush(key, *batch)
        elif entry.type == "set":
            for batch in _batches(value):
                pipe.sadd(key, *batch)
        elif entry.type == "hash":
            for batch in _batches(value):
                pipe.hset(key, mapping=dict(batch))
        elif entry.type == "zset":
            for batch in _batches(value):
                pipe.zadd(key, dict(batch))
        else:
            for record in value:
                if isinstance(record, StreamRecord):
                    # Not xadd(dict): a stream entry may repeat a field name.
                    flat = [part for pair in record.fields for part in pair]
                    pipe.execute_command("XADD", key, record.id, *flat)  # type: ignore[no-untyped-call]
        if entry.expires_at_ms is not None:
            pipe.pexpireat(key, entry.expires_at_ms)
        try:
            pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self.target, f"write {entry.key!r}") from exc

    def delete(self, key: bytes) -> None:
        """Remove ``key`` (a no-op when absent)."""
        try:
            self.client.delete(key)
        except redis.exceptions.RedisError as exc:
            raise translate(exc, self.target, f"delete {key!r}") from exc

    def close(self) -> None:
        """Close the connections."""
        self.client.close()


def _pairs(flat: Sequence[bytes] | dict[bytes, bytes]) -> tuple[tuple[bytes, bytes], ...]:
    if isinstance(flat, dict):
        return tuple(flat.items())
    return tuple(zip(flat[::2], flat[1::2], strict=True))


def _batches(items: Any) -> Iterator[Any]:
    items = list(items)
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]
