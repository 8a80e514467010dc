"""The manifest of an object backup: which objects a dated set holds, read as untrusted input.

Layout in the backup store (any :class:`~harness.storage.base.ObjectStore`)::

    backups/<kind>/<set_id>/<key>             the bytes of each object copied by this set
    backups/<kind>/<set_id>.manifest.json     the manifest, written last

``kind`` names what was backed up (``images``, ``kv``, ``code``, ``database``...), and
``set_id`` is the date of the backup, ``YYYYMMDD``, with ``-HHMMSS`` appended when one day
holds several sets. The manifest sits *beside* the set's prefix, not inside it, so no object
key of the source can ever collide with it. A prefix without a manifest is not a backup
(an interrupted copy): readers ignore it.

Each :class:`ObjectEntry` records one source object: key, size, SHA-256 of its bytes, ETag,
content type and user metadata as the source reported them, and ``stored_in``, the set whose
prefix holds its bytes. An incremental backup does not copy an object whose SHA-256 equals
the previous set's entry: it points ``stored_in`` at the set that holds those bytes (always
this set or an earlier one of the same kind). Retention therefore never deletes bytes that a
kept manifest still points at.

Reading a manifest proves everything before anything is trusted, as for database sets
(:mod:`harness.sets.manifest`): bounded UTF-8 JSON without duplicate names or NaN, a strict
schema (exact types, no unknown fields, bounded strings, every key a safe key per
:func:`harness.storage.base.key_problem`), distinct keys, a digest over the canonical body
and, with ``DRILL_SIGNING_KEY`` set, an HMAC-SHA256 signature
(:mod:`harness.sets.signing`, with its own domain prefix so that a database manifest's
signature is never valid here). Failures are :class:`~harness.errors.ManifestError` (or
:class:`~harness.errors.SignatureError`) with one line saying what is wrong.

Public API (stable): :class:`ObjectEntry`, :class:`ObjectManifest`,
:class:`LoadedObjectManifest`, :func:`load_object_manifest`, :func:`read_object_manifest`,
:func:`write_object_manifest`, :func:`list_set_ids`, :func:`set_prefix`,
:func:`manifest_key`, :func:`stored_key`, :func:`set_date`, :func:`new_set_id`,
:func:`require_kind`, :func:`require_set_id`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from harness.errors import ConfigError, ManifestError
from harness.sets import signing
from harness.sets.envelope import Envelope
from harness.sets.jsondoc import iso_time
from harness.storage.base import ObjectStore, key_problem, shown

if TYPE_CHECKING:
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    # What the type checker sees of the schema's field types; pydantic checks the
    # constrained forms of :func:`_schema_types`.
    ObjectKey = str
    SetId = str
    Kind = str
    Size = int
    Sha256 = str
    Timestamp = str
    Text = str
    Metadata = dict[str, str]
    Extra = dict[str, Any]
    Entries = tuple["ObjectEntry", ...]
    FormatVersion = int

FORMAT_VERSION = 1
ROOT = "backups"
MANIFEST_SUFFIX = ".manifest.json"
# A million entries of a few hundred bytes; anything bigger is refused before parsing.
MAX_MANIFEST_BYTES = 512 << 20
# Domain separation: a signature over a database set's manifest never verifies here.
_SIGNING_CONTEXT = b"object-backup manifest\n"
# Non-ASCII keys spelled as themselves in the canonical body (digests of existing sets).
ENVELOPE = Envelope(
    what="object manifest",
    newest=FORMAT_VERSION,
    limit=MAX_MANIFEST_BYTES,
    context=_SIGNING_CONTEXT,
    ensure_ascii=False,
)

KIND_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SET_ID_PATTERN = re.compile(r"(\d{8})(?:-(\d{6}))?")

LockMode = Literal["GOVERNANCE", "COMPLIANCE"]
_STRICT: ConfigDict = {"strict": True, "extra": "forbid"}


def _printable(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError("contains a control character")
    return value


def _object_key(value: str) -> str:
    problem = key_problem(value)
    if problem:
        raise ValueError(f"object key {shown(value)} {problem}")
    return value


def _set_id(value: str) -> str:
    if set_id_problem(value):
        raise ValueError(f"{shown(value, limit=40)} is not a set id (YYYYMMDD or YYYYMMDD-HHMMSS)")
    return value


def _kind(value: str) -> str:
    if not KIND_PATTERN.fullmatch(value):
        raise ValueError(f"{shown(value, limit=40)} is not a kind (lowercase a-z, 0-9, _ and -)")
    return value


def _schema_types() -> dict[str, Any]:
    """The constrained field types the dataclasses below name, for pydantic.

    Built on the first manifest read, not at import: pydantic costs about 7 MiB and a
    process that only writes manifests (a first backup, a CLI listing) never needs it.
    """
    from annotated_types import MaxLen
    from pydantic import AfterValidator, Field

    meta_name = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_printable)]
    meta_value = Annotated[str, Field(max_length=2048), AfterValidator(_printable)]
    extra_name = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
    return {
        "ObjectKey": Annotated[
            str, Field(min_length=1, max_length=1024), AfterValidator(_object_key)
        ],
        "SetId": Annotated[str, Field(max_length=15), AfterValidator(_set_id)],
        "Kind": Annotated[str, Field(max_length=63), AfterValidator(_kind)],
        "Size": Annotated[int, Field(ge=0, le=2**63 - 1)],
        "Sha256": Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")],
        "Timestamp": Annotated[str, Field(max_length=64), AfterValidator(iso_time)],
        "Text": Annotated[str, Field(max_length=1024), AfterValidator(_printable)],
        "Metadata": Annotated[dict[meta_name, meta_value], MaxLen(128)],
        "Extra": Annotated[dict[extra_name, Any], MaxLen(64)],
        "Entries": Annotated[tuple[ObjectEntry, ...], MaxLen(10_000_000)],
        "FormatVersion": Annotated[int, Field(ge=1, le=FORMAT_VERSION)],
    }


@dataclass(frozen=True)
class ObjectEntry:
    """One source object, as backed up.

    Attributes:
        key: the object's key in the source (and, below the set prefix, in the backup).
        size: its size in bytes.
        sha256: hex SHA-256 of its bytes, computed while copying (never trusted from the
            source).
        etag: the source's ETag without quotes (informational: multipart ETags are not MD5).
        content_type: the source's Content-Type, restored as is.
        metadata: the source's user metadata (``x-amz-meta-*`` names, without the prefix).
        stored_in: the set id whose prefix holds the bytes: this set, or an earlier set of the
            same kind for an object unchanged since (incremental backups).

    """

    __pydantic_config__: ClassVar[ConfigDict] = _STRICT

    key: ObjectKey
    size: Size
    sha256: Sha256
    stored_in: SetId
    etag: Text | None = None
    content_type: Text | None = None
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectManifest:
    """What one dated object backup holds.

    Attributes:
        kind: what was backed up (``images``, ``kv``, ``code``...): the second key segment.
        set_id: ``YYYYMMDD`` or ``YYYYMMDD-HHMMSS``: the third key segment.
        created_at: ISO 8601 time (UTC) at which the copy started.
        source: where the objects came from, printable, without secrets.
        entries: every object, sorted by key.
        lock_mode: the Object Lock mode of everything this set wrote, if any.
        lock_until: ISO 8601 time until which it is locked, if any.
        extra: producer-specific facts (a KV export's key count, a git mirror's refs...).

    """

    __pydantic_config__: ClassVar[ConfigDict] = _STRICT

    kind: Kind
    set_id: SetId
    created_at: Timestamp
    source: Text
    entries: Entries
    lock_mode: LockMode | None = None
    lock_until: Timestamp | None = None
    format_version: FormatVersion = FORMAT_VERSION
    extra: Extra = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical body: the set's identity, signed or not."""
        return ENVELOPE.digest(asdict(self))

    @property
    def total_size(self) -> int:
        """Sum of every entry's size."""
        return sum(e.size for e in self.entries)

    def by_key(self) -> dict[str, ObjectEntry]:
        """The entries by source key."""
        return {e.key: e for e in self.entries}

    def stored_key(self, entry: ObjectEntry) -> str:
        """The backup-store key that holds ``entry``'s bytes."""
        return stored_key(self.kind, entry.stored_in, entry.key)

    def to_json(self, *, signing_key: bytes | None = None) -> str:
        """Serialise with a digest of the body (and an HMAC signature, given a key).

        Args:
            signing_key: sign the canonical body with HMAC-SHA256 under this key.

        """
        sealed = ENVELOPE.seal(asdict(self), signing_key=signing_key)
        return json.dumps(sealed, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class LoadedObjectManifest:
    """A manifest read from its bytes, and what is known of its signature."""

    manifest: ObjectManifest
    signature: signing.Verdict


# -- keys and set ids ------------------------------------------------------------------------


def set_id_problem(value: str) -> str | None:
    """Why ``value`` is not a set id (``YYYYMMDD`` or ``YYYYMMDD-HHMMSS``); None when it is."""
    match = SET_ID_PATTERN.fullmatch(value)
    if not match:
        return "is not YYYYMMDD or YYYYMMDD-HHMMSS"
    try:
        datetime.strptime(match.group(1) + (match.group(2) or "000000"), "%Y%m%d%H%M%S")
    except ValueError:
        return "is not a real date and time"
    return None


def require_set_id(value: str) -> str:
    """Return ``value`` when it is a set id.

    Raises:
        ConfigError: naming the value and the expected form.

    """
    problem = set_id_problem(value)
    if problem:
        raise ConfigError(
            f"backup date {shown(value, limit=40)} {problem}; use e.g. 20250131 or 20250131-040000"
        )
    return value


def require_kind(value: str) -> str:
    """Return ``value`` when it is a kind (lowercase letters, digits, ``_`` and ``-``).

    Raises:
        ConfigError: naming the value.

    """
    if not KIND_PATTERN.fullmatch(value):
        raise ConfigError(
            f"backup kind {shown(value, limit=40)} is not valid; use lowercase letters, "
            "digits, _ and - (e.g. images)"
        )
    return value


def set_date(set_id: str) -> date:
    """The calendar date of a set id.

    Raises:
        ConfigError: ``set_id`` is not a set id.

    """
    return datetime.strptime(require_set_id(set_id)[:8], "%Y%m%d").date()


def set_prefix(kind: str, set_id: str) -> str:
    """``backups/<kind>/<set_id>/``: the prefix under which a set's objects live."""
    return f"{ROOT}/{require_kind(kind)}/{require_set_id(set_id)}/"


def manifest_key(kind: str, set_id: str) -> str:
    """``backups/<kind>/<set_id>.manifest.json``: where a set's manifest lives."""
    return f"{ROOT}/{require_kind(kind)}/{require_set_id(set_id)}{MANIFEST_SUFFIX}"


def stored_key(kind: str, set_id: str, key: str) -> str:
    """The backup-store key of source object ``key`` copied by set ``set_id``."""
    return set_prefix(kind, set_id) + key


def new_set_id(now: datetime, existing: set[str] | frozenset[str]) -> str:
    """The id of a set taken at ``now``: ``YYYYMMDD``, or with ``-HHMMSS`` if that day is taken.

    Args:
        now: the time of the backup (converted to UTC).
        existing: set ids already present for the kind.

    Raises:
        ConfigError: a set with the same second already exists.

    """
    utc = now.astimezone(UTC)
    day = utc.strftime("%Y%m%d")
    if day not in existing:
        return day
    exact = utc.strftime("%Y%m%d-%H%M%S")
    if exact in existing:
        raise ConfigError(f"a backup set {exact} already exists; wait a second and retry")
    return exact


def list_set_ids(store: ObjectStore, kind: str) -> list[str]:
    """The ids of every complete set of ``kind`` in ``store`` (those with a manifest), sorted."""
    base = f"{ROOT}/{require_kind(kind)}/"
    found = []
    for info in store.list(base):
        rest = info.key[len(base) :]
        if "/" in rest or not rest.endswith(MANIFEST_SUFFIX):
            continue
        candidate = rest[: -len(MANIFEST_SUFFIX)]
        if set_id_problem(candidate) is None:
            found.append(candidate)
    return sorted(found)


# -- reading and writing ---------------------------------------------------------------------


def write_object_manifest(
    store: ObjectStore,
    manifest: ObjectManifest,
    *,
    signing_key: bytes | None = None,
    lock_until: datetime | None = None,
) -> str:
    """Publish ``manifest`` (call this last: its presence makes the set complete).

    Args:
        store: the backup store.
        manifest: what the set holds.
        signing_key: sign it (see :mod:`harness.sets.signing`).
        lock_until: keep the manifest under Object Lock until then.

    Returns:
        The manifest's key.

    Raises:
        StorageError: the store refused the write.

    """
    key = manifest_key(manifest.kind, manifest.set_id)
    data = manifest.to_json(signing_key=signing_key).encode()
    store.put_bytes(key, data, lock_until=lock_until)
    return key


def read_object_manifest(
    store: ObjectStore, kind: str, set_id: str, *, signing_key: bytes | None = None
) -> LoadedObjectManifest:
    """Read and check the manifest of set ``set_id`` of ``kind``.

    Args:
        store: the backup store.
        kind: what was backed up.
        set_id: which set.
        signing_key: require a signature made with this key.

    Raises:
        ObjectNotFound: there is no such set (or it never completed).
        ManifestError: see :func:`load_object_manifest`; also when the manifest names
            another kind or set than its key.
        SignatureError: see :func:`load_object_manifest`.

    """
    key = manifest_key(kind, set_id)
    loaded = load_object_manifest(store.get_bytes(key), signing_key=signing_key)
    m = loaded.manifest
    if (m.kind, m.set_id) != (kind, set_id):
        # A manifest copied from another set would otherwise restore the wrong objects.
        raise ManifestError(
            f"{key} describes set {m.kind}/{m.set_id}, not {kind}/{set_id}: it was moved or "
            "replaced"
        )
    return loaded


def load_object_manifest(data: bytes, *, signing_key: bytes | None) -> LoadedObjectManifest:
    """Parse and check an object manifest from untrusted bytes.

    Args:
        data: the file's content.
        signing_key: require a signature made with this key; None accepts unsigned
            manifests and reports signed ones as not verified.

    Raises:
        ManifestError: not a well-formed manifest of a known version, a duplicate key, an
            entry stored in a later set, or a digest that does not match the content.
        SignatureError: a key is given and the manifest is unsigned or signed with another.

    """
    opened = ENVELOPE.open(data)
    manifest = _validated(opened.body)
    _check_entries(manifest)
    return LoadedObjectManifest(manifest, ENVELOPE.verdict(opened, signing_key=signing_key))


def _check_entries(manifest: ObjectManifest) -> None:
    seen: set[str] = set()
    for entry in manifest.entries:
        if entry.key in seen:
            raise ManifestError(f"object manifest lists the key {shown(entry.key)} twice")
        seen.add(entry.key)
        if entry.stored_in > manifest.set_id:
            # Bytes "stored" in a later set did not exist when this one was taken.
            raise ManifestError(
                f"object manifest entry {shown(entry.key)} is stored in set {entry.stored_in}, "
                f"later than the set itself ({manifest.set_id})"
            )


@cache
def _adapter() -> TypeAdapter[ObjectManifest]:
    from pydantic import TypeAdapter

    # The dataclasses' annotations are names resolved in this module when pydantic first
    # reads them, here: the constrained types must be there by then.
    globals().update(_schema_types())
    return TypeAdapter(ObjectManifest)


def _validated(body: dict[str, Any]) -> ObjectManifest:
    adapter = _adapter()
    from pydantic import ValidationError  # loaded by _adapter already

    try:
        return adapter.validate_json(json.dumps(body))
    except ValidationError as exc:
        raise ManifestError(_one_line(exc)) from exc


def _one_line(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    kind = first["type"]
    if kind in ("missing", "missing_argument"):
        what = " is missing"
    elif kind == "unexpected_keyword_argument":
        what = " is not a field of this manifest format"
    else:
        what = ": " + str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"object manifest: {where.lstrip('.') or 'the document'}{what}{more}"
