"""The backup set's manifest: what a set holds and where it came from, read as untrusted input.

A set is a directory or an S3 prefix with its artifacts and ``manifest.json``, written last.
The manifest lists every artifact with size and SHA-256, says where the data came from
(server version, system identifier, WAL position, tools) and what it held (exact row counts
and sequence values, taken in the dump's own snapshot). A set without a readable,
self-consistent manifest is not a backup.

Anyone who can write to the bucket can write a manifest, so reading one proves everything
before anything is trusted: UTF-8 JSON of bounded size without duplicate keys or NaN, a
strict schema (:mod:`harness.sets.schema`: exact types, no unknown fields, bounded strings,
every artifact path inside the set), unique artifact paths, a digest that matches, and, when
``DRILL_SIGNING_KEY`` is set, a signature that matches (:mod:`harness.sets.signing`). Every
failure is a :class:`~harness.errors.ManifestError` with one line saying what is wrong.

On disk the manifest is the body (the fields of :class:`Manifest`) plus two envelope members:
``digest`` (SHA-256 of the canonical body) and, for signed sets, ``signature``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from harness.errors import ManifestError
from harness.sets import signing
from harness.sets.envelope import Envelope
from harness.sets.schema import (
    MANY,
    ArtifactPath,
    DbName,
    DumpFormat,
    Extra,
    FormatVersion,
    Int64,
    Kind,
    Lsn,
    Major,
    Name,
    Sha256,
    Size,
    SystemId,
    Timestamp,
    Tools,
    Version,
    Warnings,
    one_line,
)
from harness.storage.base import shown
from harness.storage.digest import sha256_file

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# A manifest of a million-table directory dump stays far below this; anything bigger is not
# a manifest, and is refused before it is read into memory.
MAX_MANIFEST_BYTES = 32 << 20
ENVELOPE = Envelope(what="manifest.json", newest=FORMAT_VERSION, limit=MAX_MANIFEST_BYTES)

_STRICT = ConfigDict(strict=True, extra="forbid")


@dataclass(frozen=True)
class Artifact:
    """One file of the set."""

    __pydantic_config__: ClassVar[ConfigDict] = _STRICT

    path: ArtifactPath
    size: Size
    sha256: Sha256
    kind: Kind


@dataclass(frozen=True)
class TableRows:
    """Exact row count of one table at backup time."""

    __pydantic_config__: ClassVar[ConfigDict] = _STRICT

    schema: Name
    name: Name
    rows: Size

    @property
    def qualified(self) -> str:
        """``schema.name``."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class SequenceState:
    """A sequence's position at backup time."""

    __pydantic_config__: ClassVar[ConfigDict] = _STRICT

    schema: Name
    name: Name
    last_value: Int64 | None
    is_called: bool


@dataclass(frozen=True)
class Manifest:
    """What a backup set holds and where it came from."""

    __pydantic_config__: ClassVar[ConfigDict] = _STRICT

    created_at: Timestamp
    dbname: DbName
    source_server_version: Version
    source_major: Major
    system_identifier: SystemId | None
    wal_lsn: Lsn | None
    dump_format: DumpFormat
    tools: Tools
    artifacts: Annotated[tuple[Artifact, ...], MANY]
    tables: Annotated[tuple[TableRows, ...], MANY]
    sequences: Annotated[tuple[SequenceState, ...], MANY]
    warnings: Warnings = ()
    format_version: FormatVersion = FORMAT_VERSION
    extra: Extra = field(default_factory=dict)

    def artifact(self, kind: str) -> Artifact:
        """The first artifact of ``kind``.

        Raises:
            ManifestError: there is none.

        """
        for a in self.artifacts:
            if a.kind == kind:
                return a
        raise ManifestError(f"the manifest lists no {kind} artifact")

    def dump_path(self) -> str:
        """The dump's path in the set: the file (custom) or the directory (directory format).

        Raises:
            ManifestError: the manifest lists no dump.

        """
        path = self.artifact(f"dump-{self.dump_format}").path
        return path.rsplit("/", 1)[0] if self.dump_format == "directory" else path

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical content: the set's identity, signed or not."""
        return ENVELOPE.digest(asdict(self))

    def to_json(self, *, signing_key: bytes | None = None) -> str:
        """Serialise with a digest of the content (and a signature, given a key).

        Args:
            signing_key: sign the body with HMAC-SHA256 under this key.

        """
        sealed = ENVELOPE.seal(asdict(self), signing_key=signing_key)
        return json.dumps(sealed, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse and check a manifest (a signature, if any, is not verified here).

        Raises:
            ManifestError: see :func:`load_manifest`.

        """
        return load_manifest(text.encode("utf-8", "surrogatepass"), signing_key=None).manifest


@dataclass(frozen=True)
class LoadedManifest:
    """A manifest read from its bytes, and what is known about its signature."""

    manifest: Manifest
    signature: signing.Verdict


def load_manifest(data: bytes, *, signing_key: bytes | None) -> LoadedManifest:
    """Read ``manifest.json`` from untrusted bytes.

    Args:
        data: the file's content.
        signing_key: require a signature made with this key; None accepts unsigned sets
            and reports signed ones as not verified.

    Raises:
        ManifestError: the bytes are not a well-formed manifest of a known format version,
            or its digest does not match its content.
        SignatureError: a key is given and the manifest is unsigned or signed with another.

    """
    opened = ENVELOPE.open(data)
    manifest = _validated(opened.body)
    _require_distinct_paths(manifest)
    return LoadedManifest(manifest, ENVELOPE.verdict(opened, signing_key=signing_key))


@cache
def _adapter() -> TypeAdapter[Manifest]:
    return TypeAdapter(Manifest)


def _validated(body: dict[str, Any]) -> Manifest:
    try:
        # The JSON form: arrays become tuples under strict typing, nothing else is coerced.
        return _adapter().validate_json(json.dumps(body))
    except ValidationError as exc:
        raise ManifestError(one_line(exc)) from exc


def _require_distinct_paths(manifest: Manifest) -> None:
    seen: set[str] = set()
    for artifact in manifest.artifacts:
        if artifact.path in seen:
            raise ManifestError(f"manifest.json lists the artifact {shown(artifact.path)} twice")
        seen.add(artifact.path)
    for path in seen:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in seen:
                # Both cannot exist: one would overwrite the other when the set is fetched.
                raise ManifestError(
                    f"manifest.json lists {shown(parent)} both as a file and as the "
                    f"directory of {shown(path)}"
                )


def describe_artifacts(root: Path, files: dict[str, str]) -> tuple[Artifact, ...]:
    """Hash every file (relative path -> kind) below ``root``; directories are expanded."""
    found = []
    for rel, kind in sorted(files.items()):
        path = root / rel
        members = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for member in members:
            found.append(
                Artifact(
                    path=member.relative_to(root).as_posix(),
                    size=member.stat().st_size,
                    sha256=sha256_file(member),
                    kind=kind,
                )
            )
    return tuple(found)
