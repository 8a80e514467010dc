"""The key-value adapter interface and the JSON Lines export format every adapter shares.

An adapter (:class:`KvStore`) is four operations over one key space: list the keys, read an
entry, write an entry, delete a key. Redis (:mod:`harness.kv.redis_store`) implements it;
another store (Cloudflare Workers KV, a Memcached, a DynamoDB table) plugs in as one more
class with the same methods and errors, declaring in :attr:`KvStore.value_types` which value
types it can hold (Workers KV: ``string`` only). Backup, restore and verification
(:mod:`harness.kv.backup`) work on any adapter.

An entry (:class:`KvEntry`) is a binary key, a typed value, an absolute expiry and optional
JSON metadata. Values are bytes, never text: nothing is decoded, so every byte survives.
Expiry is absolute (Unix milliseconds), not a remaining TTL: an entry restored a week after
its backup must expire when it would have, and one whose time has passed is not restored.

The export is JSON Lines (UTF-8, one JSON document per line, written with :mod:`json`)::

    {"format": "recovery-drill-kv", "version": 1, "source": "...", "created_at": "..."}
    {"key": {"text": "session:1"}, "type": "string", "value": {"base64": "AP8="}, ...}
    ...
    {"end": true, "entries": 2, "sha256": "<hex SHA-256 of every entry line>"}

Every byte string is a *blob*: ``{"text": "..."}`` when it is UTF-8 text, else
``{"base64": "..."}`` (RFC 4648, padded), so keys stay readable and binary values exact.
Values by type: ``string`` a blob; ``list`` and ``set`` a list of blobs; ``hash`` a list of
``[field, value]`` blob pairs; ``zset`` a list of ``[member, score]`` with the score as the
text of a float (``repr``, so ``inf`` and every double round-trip exactly); ``stream`` a
list of ``{"id": "ms-seq", "fields": [[field, value], ...]}``. Entry lines also carry
``expires_at_ms`` (integer or null) and ``metadata`` (any JSON value, or null).

The trailer line holds the number of entries and the SHA-256 of the entry lines: an export
cut short, or with a line removed or edited, is refused when read
(:class:`~harness.errors.KvExportError`), even without its set manifest.

Public API (stable): :data:`VALUE_TYPES`, :class:`StreamRecord`, :class:`KvEntry`,
:class:`KvStore`, :class:`ExportSummary`, :func:`encode_blob`, :func:`decode_blob`,
:func:`entry_to_json`, :func:`entry_from_json`, :func:`write_export`, :class:`ExportReader`,
:func:`read_export`, :func:`check_export`, :func:`entry_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal, Protocol, TypeAlias, runtime_checkable

from harness.errors import KvExportError

FORMAT = "recovery-drill-kv"
FORMAT_VERSION = 1
VALUE_TYPES = frozenset({"string", "list", "set", "hash", "zset", "stream"})
ValueType = Literal["string", "list", "set", "hash", "zset", "stream"]

Pair: TypeAlias = tuple[bytes, bytes]
Scored: TypeAlias = tuple[bytes, float]

_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_SCORE = re.compile(r"-?(inf|[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?)")


@dataclass(frozen=True)
class StreamRecord:
    """One stream entry: its id (``<ms>-<seq>``) and its field/value pairs, in order."""

    id: str
    fields: tuple[Pair, ...]


KvValue: TypeAlias = (
    bytes | tuple[bytes, ...] | tuple[Pair, ...] | tuple[Scored, ...] | tuple[StreamRecord, ...]
)


@dataclass(frozen=True)
class KvEntry:
    """One key with its value, expiry and metadata.

    Build entries with the constructors (:meth:`string`, :meth:`hash`...): they normalise
    unordered types (set members, hash fields, sorted-set members are sorted) so that two
    equal key-value states give equal entries.

    Attributes:
        key: the key, bytes.
        type: one of :data:`VALUE_TYPES`.
        value: ``bytes`` for ``string``; ``tuple[bytes, ...]`` for ``list`` (in order) and
            ``set``; ``tuple[(field, value), ...]`` for ``hash``; ``tuple[(member, score),
            ...]`` for ``zset``; ``tuple[StreamRecord, ...]`` for ``stream``.
        expires_at_ms: absolute expiry (Unix milliseconds), None for no expiry.
        metadata: JSON metadata attached to the key (Workers KV), None when absent.

    """

    key: bytes
    type: ValueType
    value: KvValue
    expires_at_ms: int | None = None
    metadata: Any = None

    @classmethod
    def string(cls, key: bytes, value: bytes, **kw: Any) -> KvEntry:
        """A ``string`` entry (``kw``: ``expires_at_ms``, ``metadata``)."""
        return cls(key, "string", bytes(value), **kw)

    @classmethod
    def list_(cls, key: bytes, items: Iterable[bytes], **kw: Any) -> KvEntry:
        """A ``list`` entry, items in order."""
        return cls(key, "list", tuple(bytes(i) for i in items), **kw)

    @classmethod
    def set_(cls, key: bytes, members: Iterable[bytes], **kw: Any) -> KvEntry:
        """A ``set`` entry (members sorted)."""
        return cls(key, "set", tuple(sorted(bytes(m) for m in members)), **kw)

    @classmethod
    def hash(cls, key: bytes, fields: Iterable[Pair], **kw: Any) -> KvEntry:
        """A ``hash`` entry (fields sorted)."""
        return cls(key, "hash", tuple(sorted((bytes(f), bytes(v)) for f, v in fields)), **kw)

    @classmethod
    def zset(cls, key: bytes, members: Iterable[Scored], **kw: Any) -> KvEntry:
        """A ``zset`` entry (members sorted; scores exact doubles)."""
        return cls(key, "zset", tuple(sorted((bytes(m), float(s)) for m, s in members)), **kw)

    @classmethod
    def stream(cls, key: bytes, records: Iterable[StreamRecord], **kw: Any) -> KvEntry:
        """A ``stream`` entry, records in id order."""
        return cls(key, "stream", tuple(records), **kw)

    def __post_init__(self) -> None:
        """Refuse a value whose shape does not match its type (a programming error)."""
        if not _shape_ok(self.type, self.value):
            raise TypeError(f"a {self.type} entry cannot hold {type(self.value).__name__}")

    def same_content(self, other: KvEntry) -> bool:
        """True when key, type, value and metadata are equal (expiry is compared apart)."""
        return (self.key, self.type, self.value, self.metadata) == (
            other.key,
            other.type,
            other.value,
            other.metadata,
        )


@runtime_checkable
class KvStore(Protocol):
    """One key space of a key-value store (a Redis database, a Workers KV namespace).

    Errors: :class:`~harness.errors.StorageError` (or a subclass) for anything the store
    refuses or cannot do; :class:`~harness.errors.ConfigError` for an entry of a type the
    store cannot hold.
    """

    @property
    def location(self) -> str:
        """Where the store lives, printable (no secrets)."""
        ...

    @property
    def value_types(self) -> frozenset[str]:
        """The value types this store can hold (a subset of :data:`VALUE_TYPES`)."""
        ...

    def keys(self) -> Iterator[bytes]:
        """Every key, incrementally (never one blocking call over the whole key space)."""
        ...

    def read(self, key: bytes) -> KvEntry | None:
        """The entry at ``key`` read consistently, or None when it does not exist (any more)."""
        ...

    def write(self, entry: KvEntry) -> None:
        """Replace whatever is at ``entry.key`` with ``entry`` (value, expiry, metadata)."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove ``key`` (a no-op when absent)."""
        ...


# -- the JSON form ---------------------------------------------------------------------------


def encode_blob(data: bytes) -> dict[str, str]:
    """``{"text": ...}`` for UTF-8 text, else ``{"base64": ...}``: lossless either way."""
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def decode_blob(obj: Any, where: str = "value") -> bytes:
    """The bytes of a blob written by :func:`encode_blob`.

    Raises:
        KvExportError: ``obj`` is not a blob.

    """
    if isinstance(obj, dict) and len(obj) == 1:
        if isinstance(obj.get("text"), str):
            try:
                return str(obj["text"]).encode("utf-8")
            except UnicodeEncodeError as exc:
                raise KvExportError(f"{where}: text holds a lone surrogate") from exc
        if isinstance(obj.get("base64"), str):
            try:
                return base64.b64decode(str(obj["base64"]), validate=True)
            except binascii.Error as exc:
                raise KvExportError(f"{where}: invalid base64 ({exc})") from exc
    raise KvExportError(f'{where} is not a blob ({{"text": ...}} or {{"base64": ...}})')


def entry_to_json(entry: KvEntry) -> dict[str, Any]:
    """The JSON-ready form of ``entry`` (one export line)."""
    value: Any
    if entry.type == "string":
        value = encode_blob(entry.value if isinstance(entry.value, bytes) else b"")
    elif entry.type in ("list", "set"):
        value = [encode_blob(i) for i in entry.value if isinstance(i, bytes)]
    elif entry.type == "hash":
        value = [[encode_blob(f), encode_blob(v)] for f, v in _pairs(entry)]
    elif entry.type == "zset":
        value = [[encode_blob(m), repr(float(s))] for m, s in _scored(entry)]
    else:
        value = [
            {"id": r.id, "fields": [[encode_blob(f), encode_blob(v)] for f, v in r.fields]}
            for r in entry.value
            if isinstance(r, StreamRecord)
        ]
    return {
        "key": encode_blob(entry.key),
        "type": entry.type,
        "value": value,
        "expires_at_ms": entry.expires_at_ms,
        "metadata": entry.metadata,
    }


def entry_from_json(obj: Any, where: str = "entry") -> KvEntry:
    """Rebuild an entry from :func:`entry_to_json`'s form, checking every field.

    Raises:
        KvExportError: a missing, unknown or ill-typed field, naming ``where``.

    """
    if not isinstance(obj, dict):
        raise KvExportError(f"{where} is not a JSON object")
    fields = {"key", "type", "value", "expires_at_ms", "metadata"}
    if set(obj) != fields:
        odd = sorted(set(obj) ^ fields)
        raise KvExportError(f"{where} has missing or unknown fields: {', '.join(odd)}")
    key = decode_blob(obj["key"], f"{where}.key")
    kind, raw, expires = obj["type"], obj["value"], obj["expires_at_ms"]
    if expires is not None and (type(expires) is not int or expires < 0):
        raise KvExportError(f"{where}.expires_at_ms is not a non-negative integer or null")
    kw: dict[str, Any] = {"expires_at_ms": expires, "metadata": obj["metadata"]}
    if kind == "string":
        return KvEntry.string(key, decode_blob(raw, f"{where}.value"), **kw)
    if kind not in VALUE_TYPES:
        raise KvExportError(f"{where}.type {kind!r} is not one of {', '.join(sorted(VALUE_TYPES))}")
    if not isinstance(raw, list):
        raise KvExportError(f"{where}.value of a {kind} is not a list")
    if kind == "list":
        return KvEntry.list_(key, (decode_blob(v, f"{where}.value") for v in raw), **kw)
    if kind == "set":
        return KvEntry.set_(key, (decode_blob(v, f"{where}.value") for v in raw), **kw)
    if kind == "hash":
        return KvEntry.hash(key, (_pair(p, f"{where}.value") for p in raw), **kw)
    if kind == "zset":
        return KvEntry.zset(key, (_member(p, f"{where}.value") for p in raw), **kw)
    return KvEntry.stream(key, (_record(r, f"{where}.value") for r in raw), **kw)


def entry_digest(entry: KvEntry) -> str:
    """SHA-256 of the entry's canonical JSON without its expiry (content identity)."""
    body = entry_to_json(entry)
    body.pop("expires_at_ms")
    return hashlib.sha256(_line(body)).hexdigest()


# -- export files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSummary:
    """What an export holds: the header's facts and the trailer's."""

    source: str
    created_at: str
    entries: int
    sha256: str


def write_export(
    entries: Iterable[KvEntry], out: IO[bytes], *, source: str, created_at: str
) -> ExportSummary:
    """Write header, one line per entry, and trailer to ``out`` (streamed, one entry at a time).

    Args:
        entries: what to export.
        out: a binary file open for writing.
        source: where the entries came from, printable, without secrets.
        created_at: ISO 8601 time of the export.

    """
    out.write(_line({"format": FORMAT, "version": FORMAT_VERSION, "source": source,
                     "created_at": created_at}))  # fmt: skip
    digest = hashlib.sha256()
    count = 0
    for entry in entries:
        line = _line(entry_to_json(entry))
        digest.update(line)
        out.write(line)
        count += 1
    out.write(_line({"end": True, "entries": count, "sha256": digest.hexdigest()}))
    return ExportSummary(source, created_at, count, digest.hexdigest())


class ExportReader:
    """Read an export line by line: the header at once, entries as iterated, then the trailer.

    After a complete iteration :attr:`summary` holds the export's facts; a damaged export
    raises before that.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        """Read the header.

        Raises:
            KvExportError: the first line is not a header of a known version.

        """
        self._stream = stream
        self.source, self.created_at = _header(stream.readline())
        self.summary: ExportSummary | None = None

    def __iter__(self) -> Iterator[KvEntry]:
        """Yield every entry; the trailer is checked when the lines run out.

        Raises:
            KvExportError: a malformed line, a missing trailer (truncated), a count or
                SHA-256 that does not match the lines read, or lines after the trailer.

        """
        digest = hashlib.sha256()
        count = 0
        for number, line in enumerate(self._stream, start=2):
            obj = _parse(line, number)
            if isinstance(obj, dict) and obj.get("end") is True:
                _trailer(obj, count, digest.hexdigest(), self._stream)
                self.summary = ExportSummary(
                    self.source, self.created_at, count, digest.hexdigest()
                )
                return
            digest.update(line)
            count += 1
            yield entry_from_json(obj, f"line {number}")
        raise KvExportError(
            f"the export ends after {count} entries without its trailer line: it was truncated"
        )


def read_export(stream: IO[bytes]) -> Iterator[KvEntry]:
    """Yield every entry of an export; the trailer is checked when the stream ends.

    A consumer that must not act on a damaged export reads it once with
    :func:`check_export` first.

    Raises:
        KvExportError: see :class:`ExportReader`.

    """
    yield from ExportReader(stream)


def check_export(stream: IO[bytes]) -> ExportSummary:
    """Read a whole export (every line, the trailer) without keeping it in memory.

    Raises:
        KvExportError: see :class:`ExportReader`.

    """
    reader = ExportReader(stream)
    for _ in reader:
        pass
    if reader.summary is None:  # a complete iteration always sets it
        raise KvExportError("the export ended without its trailer line: it was truncated")
    return reader.summary


# -- internals -------------------------------------------------------------------------------


def _line(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n").encode()


def _parse(line: bytes, number: int) -> Any:
    try:
        return json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise KvExportError(f"line {number} of the export is not JSON ({exc})") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _header(line: bytes) -> tuple[str, str]:
    obj = _parse(line, 1)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise KvExportError(f"not a key-value export: line 1 is not a {FORMAT} header")
    if obj.get("version") != FORMAT_VERSION:
        raise KvExportError(
            f"the export has format version {obj.get('version')!r}; this harness reads "
            f"version {FORMAT_VERSION}"
        )
    source, created = obj.get("source"), obj.get("created_at")
    if not isinstance(source, str) or not isinstance(created, str):
        raise KvExportError("the export header lacks its source or created_at")
    return source, created


def _trailer(obj: dict[str, Any], count: int, sha: str, stream: IO[bytes]) -> None:
    if obj.get("entries") != count:
        raise KvExportError(
            f"the export's trailer counts {obj.get('entries')!r} entries but {count} were "
            "read: lines were removed or added"
        )
    if obj.get("sha256") != sha:
        raise KvExportError("the export's entry lines do not match its trailer's SHA-256")
    if any(rest.strip() for rest in stream):
        raise KvExportError("the export has lines after its trailer")


def _shape_ok(kind: str, value: object) -> bool:
    if kind == "string":
        return isinstance(value, bytes)
    if kind not in VALUE_TYPES or not isinstance(value, tuple):
        return False
    if kind in ("list", "set"):
        return all(isinstance(i, bytes) for i in value)
    if kind == "stream":
        return all(isinstance(i, StreamRecord) for i in value)
    second = bytes if kind == "hash" else float
    return all(
        isinstance(i, tuple)
        and len(i) == 2
        and isinstance(i[0], bytes)
        and isinstance(i[1], second)
        for i in value
    )


def _pairs(entry: KvEntry) -> Iterator[Pair]:
    for item in entry.value:
        if isinstance(item, tuple) and isinstance(item[1], bytes):
            yield item[0], item[1]


def _scored(entry: KvEntry) -> Iterator[Scored]:
    for item in entry.value:
        if isinstance(item, tuple) and isinstance(item[1], float):
            yield item[0], item[1]


def _pair(obj: Any, where: str) -> Pair:
    if not (isinstance(obj, list) and len(obj) == 2):
        raise KvExportError(f"{where} holds an element that is not a [field, value] pair")
    return decode_blob(obj[0], where), decode_blob(obj[1], where)


def _member(obj: Any, where: str) -> Scored:
    if not (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[1], str)):
        raise KvExportError(f"{where} holds an element that is not a [member, score] pair")
    if not _SCORE.fullmatch(obj[1]):
        raise KvExportError(f"{where} holds the score {obj[1]!r}, which is not a number")
    score = float(obj[1])
    if math.isnan(score):
        raise KvExportError(f"{where} holds a NaN score")
    return decode_blob(obj[0], where), score


def _record(obj: Any, where: str) -> StreamRecord:
    if not (isinstance(obj, dict) and set(obj) == {"id", "fields"}):
        raise KvExportError(f"{where} holds a stream record without exactly id and fields")
    if not (isinstance(obj["id"], str) and _STREAM_ID.fullmatch(obj["id"])):
        raise KvExportError(f"{where} holds a stream id that is not <ms>-<seq>")
    if not isinstance(obj["fields"], list):
        raise KvExportError(f"{where} holds stream fields that are not a list")
    return StreamRecord(obj["id"], tuple(_pair(p, where) for p in obj["fields"]))
