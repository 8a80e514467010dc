"""Code repository backups: a ``git clone --mirror``, archived with its SHA-256 and refs.

A set of kind ``code`` holds one object, ``repo.tar.gz`` (the bare mirror: every branch,
tag and other ref), and its manifest records the archive's size and SHA-256 and every ref
with its commit (``extra.refs``). Verification downloads the archive, checks its hash,
unpacks it (the ``data`` filter: no absolute paths, links out or devices), runs
``git fsck --full`` and compares every ref with the manifest, and with the source when one
is given: a mirror that lost a branch or a tag fails.

Credentials never travel in the URL (it is logged and visible in ``ps``): give them to git
through its own credential helpers or environment, as for any clone.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from harness.errors import ConfigError, ManifestError
from harness.objects.manifest import (
    ObjectManifest,
    read_object_manifest,
)
from harness.objects.single import choose_set_id, publish_file_set
from harness.proc import run
from harness.redact import register_secret
from harness.storage.base import ObjectStore
from harness.storage.digest import sha256_file
from harness.verify.checks import CheckResult

ARCHIVE = "repo.tar.gz"
MIRROR = "repo.git"
GIT_TIMEOUT = 1800.0
# Never wait for a password on a terminal nobody watches.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


@dataclass(frozen=True)
class RepoBackupResult:
    """One repository backup set."""

    manifest: ObjectManifest
    manifest_key: str
    refs: dict[str, str]
    seconds: float


def require_clean_url(url: str) -> str:
    """Return ``url`` unless it carries a password or token.

    Raises:
        ConfigError: credentials in the URL.

    """
    parts = urlsplit(url)
    if parts.password:
        register_secret(parts.password)
        raise ConfigError(
            "the repository URL carries a password or token; give it to git through a "
            "credential helper or GIT_CONFIG_* environment variables instead"
        )
    return url


def git_refs(repo: str | Path) -> dict[str, str]:
    """Every ref (``refs/...``) of a local repository or a URL, with its object id.

    ``HEAD`` and peeled tags (``^{}``) are left out: a mirror has the same refs as its
    source, and those two are views of other refs.

    Raises:
        ToolError: git failed.

    """
    out = run(["git", "ls-remote", "--refs", str(repo)], timeout=GIT_TIMEOUT, env=_GIT_ENV).stdout
    refs = {}
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name.startswith("refs/"):
            refs[name] = sha
    return refs


def backup_repo(
    url: str,
    backup: ObjectStore,
    *,
    workdir: Path,
    kind: str = "code",
    set_id: str | None = None,
    now: datetime | None = None,
    signing_key: bytes | None = None,
    lock_until: datetime | None = None,
) -> RepoBackupResult:
    """Mirror ``url``, archive it and publish set ``backups/<kind>/<set_id>/``.

    Raises:
        ConfigError: credentials in the URL, or a set id already taken.
        ToolError: git failed (nothing is published).
        StorageError: the upload failed (no manifest is written).

    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    require_clean_url(url)
    set_id = choose_set_id(backup, kind, set_id, now)
    mirror = workdir / MIRROR
    shutil.rmtree(mirror, ignore_errors=True)
    run(
        ["git", "clone", "--mirror", "--quiet", url, str(mirror)], timeout=GIT_TIMEOUT, env=_GIT_ENV
    )
    refs = git_refs(mirror)
    archive = workdir / ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(mirror, arcname=MIRROR)
    manifest, key = publish_file_set(
        backup,
        archive,
        kind=kind,
        set_id=set_id,
        key=ARCHIVE,
        now=now,
        source=url,
        content_type="application/gzip",
        extra={"refs": refs},
        signing_key=signing_key,
        lock_until=lock_until,
    )
    return RepoBackupResult(manifest, key, refs, time.monotonic() - started)


def restore_repo(
    backup: ObjectStore,
    set_id: str,
    workdir: Path,
    *,
    kind: str = "code",
    signing_key: bytes | None = None,
) -> tuple[Path, ObjectManifest]:
    """Download and unpack a set's mirror into ``workdir``; return the bare repository.

    Push it anywhere with ``git push --mirror``; clone from it with ``git clone``.

    Raises:
        ObjectNotFound: no such set.
        ManifestError: the manifest is unreadable, or the archive's size or SHA-256
            differs from it (nothing is unpacked).

    """
    manifest = read_object_manifest(backup, kind, set_id, signing_key=signing_key).manifest
    entry = manifest.by_key().get(ARCHIVE)
    if entry is None:
        raise ManifestError(f"set {kind}/{set_id} holds no {ARCHIVE}")
    archive = workdir / ARCHIVE
    backup.get_file(manifest.stored_key(entry), archive)
    size, sha = archive.stat().st_size, sha256_file(archive)
    if (size, sha) != (entry.size, entry.sha256):
        raise ManifestError(
            f"{manifest.stored_key(entry)} was changed after the backup ({size} bytes, "
            f"SHA-256 {sha[:12]}... instead of {entry.size} bytes, {entry.sha256[:12]}...)"
        )
    target = workdir / "restored"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        # The "data" filter refuses absolute names, links leading out, devices.
        tar.extractall(target, filter="data")
    return target / MIRROR, manifest


def verify_repo(
    backup: ObjectStore,
    set_id: str,
    workdir: Path,
    *,
    kind: str = "code",
    source: str | None = None,
    signing_key: bytes | None = None,
) -> list[CheckResult]:
    """Restore set ``set_id`` into ``workdir`` and check it; every check is returned.

    Checks: the archive's SHA-256 (by :func:`restore_repo`), ``git fsck --full``, every
    ref equal to the manifest's, and, with ``source``, every ref equal to the source's now.

    Raises:
        ObjectNotFound: no such set.
        ManifestError: the manifest or the archive fails its hash (see :func:`restore_repo`).

    """
    repo, manifest = restore_repo(backup, set_id, workdir, kind=kind, signing_key=signing_key)
    checks = [CheckResult("repository archive SHA-256", ok=True, critical=True, detail="matches")]
    fsck = run(
        ["git", "--git-dir", str(repo), "fsck", "--full", "--no-progress"],
        timeout=GIT_TIMEOUT,
        env=_GIT_ENV,
        check=False,
    )
    detail = (fsck.stderr or fsck.stdout).strip().splitlines()
    checks.append(
        CheckResult(
            "git fsck --full",
            ok=fsck.returncode == 0,
            critical=True,
            detail="no problems" if fsck.returncode == 0 else "; ".join(detail[-3:]),
        )
    )
    restored = git_refs(repo)
    recorded = manifest.extra.get("refs", {})
    checks.append(_refs_check("refs equal the manifest", recorded, restored))
    if source is not None:
        checks.append(_refs_check("refs equal the source", git_refs(source), restored))
    return checks


def _refs_check(name: str, want: dict[str, str], got: dict[str, str]) -> CheckResult:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    moved = sorted(r for r in set(want) & set(got) if want[r] != got[r])
    problems = [
        f"{label}: {', '.join(refs[:5])}"
        for label, refs in (("missing", missing), ("extra", extra), ("different", moved))
        if refs
    ]
    return CheckResult(
        name,
        ok=not problems,
        critical=True,
        detail="; ".join(problems) or f"{len(got)} refs equal",
    )


def git_available() -> bool:
    """True when a ``git`` executable is on PATH."""
    return shutil.which("git", path=os.environ.get("PATH")) is not None
