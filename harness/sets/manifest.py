"""The backup set: artifacts plus ``manifest.json``, written last; and where sets live.

A set is a directory or an S3 prefix. Its manifest lists every artifact with size and
SHA-256, says where the data came from (server version, system identifier, WAL position,
tools) and what it held (exact row counts and sequence values, taken in the dump's own
snapshot). A set without a readable, self-consistent manifest is not a backup.

Publishing is atomic for readers: a local set is staged beside its destination and renamed
into place; an S3 set uploads every artifact first and the manifest last.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from harness.config import S3Target
from harness.errors import ConfigError, ManifestError, ObjectNotFound
from harness.redact import get_logger
from harness.storage.digest import sha256_file
from harness.storage.s3 import S3ObjectStore

log = get_logger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Artifact:
    """One file of the set."""

    path: str
    size: int
    sha256: str
    kind: str


@dataclass(frozen=True)
class TableRows:
    """Exact row count of one table at backup time."""

    schema: str
    name: str
    rows: int

    @property
    def qualified(self) -> str:
        """``schema.name``."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class SequenceState:
    """A sequence's position at backup time."""

    schema: str
    name: str
    last_value: int | None
    is_called: bool


@dataclass(frozen=True)
class Manifest:
    """What a backup set holds and where it came from."""

    created_at: str
    dbname: str
    source_server_version: str
    source_major: int
    system_identifier: str | None
    wal_lsn: str | None
    dump_format: str
    tools: dict[str, str]
    artifacts: tuple[Artifact, ...]
    tables: tuple[TableRows, ...]
    sequences: tuple[SequenceState, ...]
    warnings: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

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

    def to_json(self) -> str:
        """Serialise with a digest of the content, so any edit is detectable."""
        body = asdict(self)
        body["digest"] = _digest(body)
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Parse and check a manifest.

        Raises:
            ManifestError: not JSON, an unknown format version, missing fields, or a digest
                that does not match the content (the manifest was edited or damaged).

        """
        try:
            body: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"manifest.json is not valid JSON ({exc})") from exc
        if not isinstance(body, dict):
            raise ManifestError("manifest.json is not a JSON object")
        version = body.get("format_version")
        if version != FORMAT_VERSION:
            raise ManifestError(
                f"manifest format version {version!r} is not supported (this harness reads "
                f"{FORMAT_VERSION})"
            )
        digest = body.pop("digest", None)
        if digest != _digest(body):
            raise ManifestError(
                "manifest.json was modified after it was written (its "
                "digest does not match its content)"
            )
        try:
            return cls(
                **{
                    **body,
                    "artifacts": tuple(Artifact(**a) for a in body["artifacts"]),
                    "tables": tuple(TableRows(**t) for t in body["tables"]),
                    "sequences": tuple(SequenceState(**s) for s in body["sequences"]),
                    "warnings": tuple(body.get("warnings", ())),
                }
            )
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"manifest.json lacks or misnames a field ({exc})") from exc


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


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


# -- locations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """Where a set lives: a local directory, or a prefix in an S3 bucket."""

    uri: str
    local: Path | None = None
    bucket: str = ""
    prefix: str = ""
    s3: S3Target | None = None
    # Publishing: keep every object under COMPLIANCE Object Lock for this many days.
    lock_days: int = 0
    # Fetching: read the newest version of each object at or before this time (a versioned
    # bucket keeps the set as it was, whatever was overwritten or deleted since).
    as_of: datetime | None = None

    @property
    def is_s3(self) -> bool:
        """True for ``s3://`` locations."""
        return self.local is None

    def store(self) -> S3ObjectStore:
        """The bucket of an S3 location."""
        if self.s3 is None:
            raise ConfigError(f"{self.uri} is an S3 location but no S3 endpoint is configured")
        return S3ObjectStore(self.s3, self.bucket)

    def key(self, rel: str) -> str:
        """The object key of an artifact path."""
        return f"{self.prefix}/{rel}" if self.prefix else rel


def parse_location(
    uri: str,
    *,
    s3: S3Target | None = None,
    lock_days: int = 0,
    as_of: datetime | None = None,
) -> Location:
    """Interpret ``uri``: ``s3://bucket/prefix`` or a local directory path.

    Args:
        uri: where the set is.
        s3: the endpoint and credentials of an ``s3://`` location.
        lock_days: write the set under COMPLIANCE Object Lock for this many days (S3 only).
        as_of: read the set as it was at this time, from object versions (S3 only).

    Raises:
        ConfigError: an S3 URI without a bucket, or S3-only options on a local path.

    """
    if uri.startswith("s3://"):
        parts = urlsplit(uri)
        if not parts.netloc:
            raise ConfigError(f"{uri!r} names no bucket; use s3://bucket/prefix")
        return Location(
            uri=uri,
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            s3=s3,
            lock_days=lock_days,
            as_of=as_of,
        )
    if lock_days or as_of:
        raise ConfigError("Object Lock and reading as of a time need an s3:// location")
    return Location(uri=uri, local=Path(uri).expanduser())


def publish(staging: Path, manifest: Manifest, location: Location) -> None:
    """Make a staged set visible at ``location``; the manifest is the commit point.

    Raises:
        ConfigError: the location already holds a set (sets are never overwritten).
        StorageError: an upload failed (the manifest is then not written).

    """
    if location.local is not None:
        dest = location.local
        if dest.exists() and any(dest.iterdir()):
            raise ConfigError(
                f"{dest} already exists and is not empty; backup sets are never "
                "overwritten: choose a new directory"
            )
        (staging / MANIFEST).write_text(manifest.to_json())
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest.rmdir()
        staging.replace(dest)
        return
    store = location.store()
    if any(o.key == location.key(MANIFEST) for o in store.list(location.key(""))):
        raise ConfigError(f"{location.uri} already holds a backup set; choose a new prefix")
    until = datetime.now(UTC) + timedelta(days=location.lock_days) if location.lock_days else None
    for artifact in manifest.artifacts:
        store.put_file(location.key(artifact.path), staging / artifact.path, lock_until=until)
    store.put_bytes(location.key(MANIFEST), manifest.to_json().encode(), lock_until=until)


def fetch(location: Location, workdir: Path) -> tuple[Path, list[str]]:
    """Make a set readable as a local directory.

    Returns:
        The directory, and the keys present at the location but not named by the manifest
        (for S3; for a local set the caller compares the directory itself).

    Raises:
        ObjectNotFound: no manifest at the location.

    """
    if location.local is not None:
        if not (location.local / MANIFEST).is_file():
            raise ObjectNotFound(f"no {MANIFEST} in {location.local}: not a (complete) backup set")
        return location.local, []
    store = location.store()
    root = Path(tempfile.mkdtemp(prefix="set-", dir=workdir))
    versions: dict[str, str | None] = {}
    if location.as_of is None:
        versions = {o.key: None for o in store.list(location.key(""))}
    else:
        for v in store.versions(location.key("")):  # oldest first: the last one wins
            if v.modified <= location.as_of:
                if v.deleted:
                    versions.pop(v.key, None)
                else:
                    versions[v.key] = v.version_id
    keys = versions
    if location.key(MANIFEST) not in keys:
        when = f" as of {location.as_of.isoformat()}" if location.as_of else ""
        raise ObjectNotFound(
            f"no {MANIFEST} under {location.uri}{when}: not a (complete) backup set"
        )
    store.get_file(location.key(MANIFEST), root / MANIFEST, version_id=keys[location.key(MANIFEST)])
    try:
        manifest = Manifest.from_json((root / MANIFEST).read_text())
    except ManifestError:
        return root, []  # the check reports the manifest; nothing else can be trusted
    named = {location.key(MANIFEST)}
    for artifact in manifest.artifacts:
        key = location.key(artifact.path)
        named.add(key)
        if key in keys:
            dest = root / artifact.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            store.get_file(key, dest, version_id=keys[key])
    return root, sorted(set(keys) - named)


def discard(path: Path) -> None:
    """Remove a staging or fetched directory (best effort)."""
    shutil.rmtree(path, ignore_errors=True)
