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

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from harness.errors import ManifestError, SignatureError
from harness.sets import signing
from harness.sets.jsondoc import json_object
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
    is_signature,
    one_line,
)
from harness.storage.base import shown
from harness.storage.digest import sha256_file

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# A manifest of a million-table directory dump stays far below this; anything bigger is not
# a manifest, and is refused before it is read into memory.
MAX_MANIFEST_BYTES = 32 << 20

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
        return _digest(asdict(self))

    def to_json(self, *, signing_key: bytes | None = None) -> str:
        """Serialise with a digest of the content (and a signature, given a key).

        Args:
            signing_key: sign the body with HMAC-SHA256 under this key.

        """
        body = asdict(self)
        envelope = {**body, "digest": _digest(body)}
        if signing_key is not None:
            envelope["signature"] = signing.sign(_canonical(body), signing_key)
        return json.dumps(envelope, indent=2, sort_keys=True) + "\n"

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
    body = _json_object(data)
    digest = body.pop("digest", None)
    signature = body.pop("signature", None)
    version = body.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise ManifestError(
            f"manifest.json has format version {version}: it was made by a newer harness "
            f"(this one reads version {FORMAT_VERSION}); upgrade recovery-drill-harness"
        )
    manifest = _validated(body)
    _require_distinct_paths(manifest)
    if digest is None:
        raise ManifestError("manifest.json has no digest: it was not written by this harness")
    if not isinstance(digest, str) or digest != _digest(body):
        raise ManifestError(
            "manifest.json was modified after it was written (its digest does not match its "
            "content)"
        )
    if signature is not None and not (isinstance(signature, str) and is_signature(signature)):
        raise ManifestError(
            f"manifest.json has a malformed signature (expected {signing.SCHEME}:<hex>)"
        )
    if signing_key is None:
        return LoadedManifest(manifest, "unsigned" if signature is None else "unverified")
    if signature is None:
        raise SignatureError(
            f"manifest.json is not signed but {signing.ENV_VAR} is set: only signed sets are "
            "accepted (the set was written without the key, or its signature was removed)"
        )
    if not signing.matches(_canonical(body), signature, signing_key):
        raise SignatureError(
            "manifest signature does not match: the set was altered or signed with another key"
        )
    return LoadedManifest(manifest, "verified")


def _json_object(data: bytes) -> dict[str, Any]:
    return json_object(data, what="manifest.json", limit=MAX_MANIFEST_BYTES)


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


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(body)).hexdigest()


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
