"""Physical backup sets: ``pg_basebackup`` copies in an object store, full or incremental.

A set lives below a key prefix (``base/<name>`` by convention, next to the WAL archive at
``wal/``)::

    base/<name>/base.tar.gz        the data directory as pg_basebackup wrote it (tar format),
                                   gzip; every file checked against backup_manifest
    base/<name>/backup_manifest    PostgreSQL's own manifest (SHA-256 per file, WAL range)
    base/<name>/manifest.json      ours, written last: artifacts, WAL range, parent, versions

A set without ``manifest.json`` is not a backup. The manifest follows the conventions of the
logical sets (every artifact with path, size and SHA-256; a digest over the content so any
edit is detectable) but has a schema of its own, ``physical-set/1``. Incremental sets
(PostgreSQL 17+, ``summarize_wal = on``) name their parent; a restore combines the chain
with ``pg_combinebackup``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from harness.config import PgTarget
from harness.errors import (
    BackupError,
    ConfigError,
    ManifestError,
    ObjectNotFound,
    RestoreError,
    ToolError,
)
from harness.pg.binaries import PgBinaries
from harness.pg.sql import connect
from harness.pg.wal import parse_lsn, segment_of
from harness.proc import run
from harness.redact import get_logger
from harness.sets.base_tar import check_and_pack, extract
from harness.storage.base import ObjectStore
from harness.storage.digest import sha256_file

log = get_logger(__name__)

PHYSICAL_FORMAT = "physical-set/1"
MANIFEST = "manifest.json"
BASE_TAR = "base.tar.gz"
PG_MANIFEST = "backup_manifest"


@dataclass(frozen=True)
class PhysicalArtifact:
    """One file of a physical set."""

    path: str
    size: int
    sha256: str
    kind: str


@dataclass(frozen=True)
class PhysicalManifest:
    """What a physical set holds: which server, which WAL range, which parent."""

    name: str
    created_at: str
    backup_type: str  # "full" or "incremental"
    parent: str | None  # key prefix of the set this one is incremental to
    source_server_version: str
    source_major: int
    system_identifier: str
    timeline: int
    start_lsn: str
    stop_lsn: str
    wal_segment_size: int
    wal_prefix: str
    tools: dict[str, str]
    artifacts: tuple[PhysicalArtifact, ...]
    format: str = PHYSICAL_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def start_wal(self) -> str:
        """The segment replay starts in."""
        return segment_of(parse_lsn(self.start_lsn), self.timeline, self.wal_segment_size)

    @property
    def stop_wal(self) -> str:
        """The segment holding the end of the backup (needed to become consistent)."""
        return segment_of(parse_lsn(self.stop_lsn), self.timeline, self.wal_segment_size)

    def artifact(self, kind: str) -> PhysicalArtifact:
        """The artifact of ``kind``.

        Raises:
            ManifestError: the manifest lists none.

        """
        for item in self.artifacts:
            if item.kind == kind:
                return item
        raise ManifestError(f"physical set {self.name!r} lists no {kind} artifact")

    def to_json(self) -> str:
        """Serialise with a digest of the content, so any edit is detectable."""
        body = asdict(self)
        body["digest"] = _digest(body)
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, where: str = "manifest.json") -> Self:
        """Parse and check a physical manifest.

        Raises:
            ManifestError: unreadable, another format, or edited after it was written.

        """
        try:
            body = json.loads(text)
            digest = body.pop("digest")
            if body.get("format") != PHYSICAL_FORMAT:
                raise ManifestError(
                    f"{where} is not a physical set (format {body.get('format')!r}); "
                    "use `drill restore` for logical sets"
                )
            body["artifacts"] = tuple(PhysicalArtifact(**a) for a in body["artifacts"])
            manifest = cls(**body)
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"{where} is not a readable physical manifest ({exc})") from exc
        if digest != _digest(asdict(manifest)):
            raise ManifestError(f"{where} was modified after it was written (digest mismatch)")
        return manifest


@dataclass(frozen=True)
class PhysicalBackup:
    """A physical set that was written: where, what, and how long it took."""

    prefix: str
    manifest: PhysicalManifest
    seconds: float


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _key(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def read_manifest(store: ObjectStore, prefix: str) -> PhysicalManifest:
    """Read the manifest of the set at ``prefix``.

    Raises:
        ManifestError: there is no manifest (an incomplete set) or it is unreadable.

    """
    key = _key(prefix, MANIFEST)
    try:
        data = store.get_bytes(key)
    except ObjectNotFound as exc:
        raise ManifestError(
            f"no {MANIFEST} at {store.location}/{prefix}: not a (complete) physical set"
        ) from exc
    return PhysicalManifest.from_json(data.decode("utf-8", "replace"), where=key)


def read_chain(store: ObjectStore, prefix: str) -> list[tuple[str, PhysicalManifest]]:
    """The set at ``prefix`` and its parents as (prefix, manifest), the full backup first.

    Raises:
        ManifestError: a parent is missing or belongs to another server.

    """
    chain = [(prefix, read_manifest(store, prefix))]
    while (parent_prefix := chain[0][1].parent) is not None:
        parent = read_manifest(store, parent_prefix)
        if parent.system_identifier != chain[0][1].system_identifier:
            raise ManifestError(
                f"set {chain[0][1].name!r} names parent {parent_prefix!r} of another server"
            )
        chain.insert(0, (parent_prefix, parent))
        if len(chain) > 100:
            raise ManifestError(f"the incremental chain of {prefix!r} loops or is too long")
    return chain


def _wal_range(backup_manifest: Path) -> tuple[int, str, str]:
    ranges = json.loads(backup_manifest.read_text())["WAL-Ranges"]
    return int(ranges[-1]["Timeline"]), ranges[0]["Start-LSN"], ranges[-1]["End-LSN"]


def take_base_backup(
    target: PgTarget,
    binaries: PgBinaries,
    store: ObjectStore,
    *,
    prefix: str,
    workdir: Path,
    wal_prefix: str = "wal",
    incremental_from: str | None = None,
    timeout: float = 3600.0,
) -> PhysicalBackup:
    """Take a base backup, verify it, and publish it as a physical set (manifest last).

    Args:
        target: the server to back up (a user with REPLICATION).
        binaries: client tools of the server's major version.
        store: the object store.
        prefix: key prefix of the new set (``base/<name>``).
        workdir: scratch space (the copy is made here first).
        wal_prefix: where the WAL archive of this server lives in ``store``.
        incremental_from: prefix of the set to take an incremental backup against (17+).
        timeout: seconds for ``pg_basebackup``.

    Raises:
        ConfigError: an incremental backup was asked of PostgreSQL older than 17.
        BackupError: the backup or its verification failed; nothing was published.

    """
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    copy, staging = workdir / "pgdata", workdir / "staging"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    with connect(target) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), "
            "current_setting('server_version_num')::int / 10000, "
            "(SELECT system_identifier::text FROM pg_control_system()), "
            "current_setting('wal_segment_size')"
        ).fetchone()
    if row is None:
        raise BackupError(f"cannot read server facts of {target.display()}", phase="preflight")
    version, major, system_id, seg_text = str(row[0]), int(row[1]), str(row[2]), str(row[3])
    seg_size = _size_bytes(seg_text)
    argv: list[str | Path] = [
        binaries.tool("pg_basebackup"),
        "--pgdata",
        copy,
        # One tar, not thousands of files: it is checked and compressed in one read.
        "--format=tar",
        "--wal-method=none",  # WAL comes from the archive, not from inside the backup
        "--manifest-checksums=SHA256",
        "--checkpoint=fast",
        "--no-sync",  # the copy is packed and uploaded right away; fsync would only slow it
        f"--label=drill {prefix}",
    ]
    parent: PhysicalManifest | None = None
    if incremental_from is not None:
        if major < 17 or binaries.major < 17:
            raise ConfigError(
                f"incremental backups need PostgreSQL 17 or newer (server {version}, tools "
                f"{binaries.version}); take a full backup instead"
            )
        parent = read_manifest(store, incremental_from)
        if parent.system_identifier != system_id:
            raise BackupError(
                f"{incremental_from!r} is a backup of another server; take a full backup",
                phase="options",
            )
        parent_manifest = workdir / "parent_backup_manifest"
        store.get_file(_key(incremental_from, PG_MANIFEST), parent_manifest)
        argv.append(f"--incremental={parent_manifest}")
    try:
        run(argv, timeout=timeout, env=target.libpq_env())
    except ToolError as exc:
        raise BackupError(
            f"pg_basebackup of {target.display()} failed: {exc}", phase="copy"
        ) from exc
    extra = sorted(p.name for p in copy.iterdir() if p.name not in ("base.tar", PG_MANIFEST))
    if extra:
        raise BackupError(
            f"the server has tablespaces outside its data directory ({', '.join(extra)}); "
            "physical sets hold the data directory only: use a logical backup",
            phase="copy",
        )
    timeline, start_lsn, stop_lsn = _wal_range(copy / PG_MANIFEST)
    shutil.copyfile(copy / PG_MANIFEST, staging / PG_MANIFEST)
    # Every file is checked against PostgreSQL's manifest while it is compressed.
    check_and_pack(copy / "base.tar", copy / PG_MANIFEST, staging / BASE_TAR)
    shutil.rmtree(copy, ignore_errors=True)
    artifacts = tuple(
        PhysicalArtifact(rel, (staging / rel).stat().st_size, sha256_file(staging / rel), kind)
        for rel, kind in ((BASE_TAR, "base"), (PG_MANIFEST, "pg-manifest"))
    )
    manifest = PhysicalManifest(
        name=prefix.rstrip("/").rsplit("/", 1)[-1],
        created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        backup_type="full" if incremental_from is None else "incremental",
        parent=incremental_from,
        source_server_version=version,
        source_major=major,
        system_identifier=system_id,
        timeline=timeline,
        start_lsn=start_lsn,
        stop_lsn=stop_lsn,
        wal_segment_size=seg_size,
        wal_prefix=wal_prefix,
        tools={"pg_basebackup": binaries.version},
        artifacts=artifacts,
    )
    for item in artifacts:
        store.put_file(_key(prefix, item.path), staging / item.path)
    store.put_bytes(_key(prefix, MANIFEST), manifest.to_json().encode())
    shutil.rmtree(staging, ignore_errors=True)
    log.info(
        "%s backup %s: WAL %s..%s on timeline %d",
        manifest.backup_type,
        prefix,
        start_lsn,
        stop_lsn,
        timeline,
    )
    return PhysicalBackup(prefix=prefix, manifest=manifest, seconds=time.monotonic() - started)


def _size_bytes(text: str) -> int:
    units = {"kB": 1024, "MB": 1024**2, "GB": 1024**3}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(text[: -len(unit)]) * factor
    return int(text)


def materialize(
    store: ObjectStore,
    chain: list[tuple[str, PhysicalManifest]],
    dest: Path,
    *,
    binaries: PgBinaries,
    workdir: Path,
    timeout: float = 3600.0,
) -> None:
    """Download a chain of sets, check every hash, and build the data directory ``dest``.

    A single full backup is unpacked into place (its archive's SHA-256 proves it holds what
    was checked against PostgreSQL's manifest when it was taken); an incremental chain is
    unpacked part by part, combined with ``pg_combinebackup``, and the result checked with
    ``pg_verifybackup -n`` (its WAL lives in the archive).

    Raises:
        RestoreError: a hash does not match, or a tool failed; ``dest`` is left absent.

    """
    if dest.exists():
        raise RestoreError(f"{dest} already exists; recover into a new directory", phase="input")
    parts: list[Path] = []
    try:
        for index, (prefix, manifest) in enumerate(chain):
            part = workdir / f"part-{index}"
            shutil.rmtree(part, ignore_errors=True)
            part.mkdir(parents=True)
            for item in manifest.artifacts:
                local = workdir / f"part-{index}-{item.path}"
                store.get_file(_key(prefix, item.path), local)
                if sha256_file(local) != item.sha256:
                    raise RestoreError(
                        f"{prefix}/{item.path} fails its SHA-256 check: the set is damaged; "
                        "use another base backup",
                        phase="fetch",
                    )
            extract(workdir / f"part-{index}-{BASE_TAR}", part)
            (workdir / f"part-{index}-{BASE_TAR}").unlink()
            # pg_combinebackup reads each part's manifest; a tar backup keeps it beside.
            (workdir / f"part-{index}-{PG_MANIFEST}").replace(part / PG_MANIFEST)
            parts.append(part)
        if len(parts) == 1:
            # The archive's SHA-256 matched, so these are the very bytes checked against
            # PostgreSQL's manifest when the backup was taken: checking again proves nothing.
            parts[0].rename(dest)
            dest.chmod(0o700)
        else:
            run(
                [binaries.tool("pg_combinebackup"), "--output", dest, *parts],
                timeout=timeout,
            )
            dest.chmod(0o700)
            # A combined directory is new: pg_combinebackup wrote it from the chain.
            run([binaries.tool("pg_verifybackup"), "-n", dest], timeout=timeout)
    except ToolError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise RestoreError(f"building the data directory failed: {exc}", phase="base") from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        for part in parts:
            shutil.rmtree(part, ignore_errors=True)
