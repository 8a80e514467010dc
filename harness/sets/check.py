"""Check a backup set without restoring it (C9): hashes, presence, readability.

Every artifact the manifest names must be present with its size and SHA-256; nothing may be
present that the manifest does not name; the dump's table of contents must be readable and
hold data for every table the manifest counted; the globals must parse. All checks run and
all results are returned: a truncated, bit-flipped, missing or extra artifact is named.

A set is untrusted input: its manifest is proven (schema, paths inside the set, digest, and
the signature when ``DRILL_SIGNING_KEY`` is set) before any artifact is read, and a set that
fails that is reported as one failed check, never as an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import (
    DrillError,
    ManifestError,
    SignatureError,
    UnsafeObjectError,
    VerificationFailed,
)
from harness.pg.binaries import PgBinaries, client_tools_for
from harness.pg.globals import Globals
from harness.pg.toc import TocEntry, read_toc
from harness.sets.location import Location
from harness.sets.manifest import Manifest
from harness.sets.publish import FetchedSet, fetch
from harness.sets.signing import ENV_VAR, Verdict
from harness.storage.base import shown
from harness.storage.digest import sha256_file
from harness.verify.checks import CheckResult, failures, render


@dataclass(frozen=True)
class SetCheck:
    """The outcome of checking one set."""

    location: str
    root: Path
    manifest: Manifest | None
    results: tuple[CheckResult, ...]
    toc: tuple[TocEntry, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no critical check failed."""
        return not failures(self.results)


def check_set(location: Location, *, workdir: Path, binaries: PgBinaries | None = None) -> SetCheck:
    """Run every check on the set at ``location``.

    A hostile or broken set is a failed check, never an exception: a manifest that is not
    UTF-8 JSON, breaks the schema, names a path outside the set, was modified, or (with
    ``DRILL_SIGNING_KEY`` set) is unsigned or signed with another key; a symbolic link or
    special file in a local set; objects without a manifest.

    Args:
        location: the set (local directory or S3 prefix).
        workdir: where the set's artifacts are downloaded to (a new directory below it).
        binaries: client tools to read the dump (default: matching the set's source).

    Raises:
        ObjectNotFound: nothing at all at the location (not a backup set).
        ConfigError: ``DRILL_SIGNING_KEY`` is set but unusable.

    """
    try:
        fetched = fetch(location, workdir)
    except SignatureError as exc:
        return _refused(location, workdir, "signature", str(exc))
    except ManifestError as exc:
        return _refused(location, workdir, "manifest", str(exc))
    except UnsafeObjectError as exc:
        return _refused(location, workdir, "set contents", str(exc))
    root, manifest = fetched.root, fetched.manifest
    results = [
        CheckResult(
            "manifest",
            ok=True,
            critical=True,
            detail=f"format {manifest.format_version}, {len(manifest.artifacts)} artifacts, "
            f"taken {manifest.created_at} from PostgreSQL {manifest.source_server_version}",
        ),
        _SIGNATURE_RESULTS[fetched.signature],
    ]
    results += _artifacts(fetched)
    toc: list[TocEntry] = []
    try:
        tools = binaries or client_tools_for(manifest.source_major)
        dump = root / manifest.dump_path()
        toc = read_toc(tools, dump)
        results.append(_data_entries(manifest, toc))
    except DrillError as exc:
        results.append(CheckResult("dump readable", ok=False, critical=True, detail=str(exc)))
    try:
        Globals.from_json((root / manifest.artifact("globals").path).read_text())
        results.append(CheckResult("globals", ok=True, critical=True, detail="roles.json parses"))
    except (OSError, ValueError, KeyError, TypeError, DrillError) as exc:
        results.append(
            CheckResult("globals", ok=False, critical=True, detail=f"roles.json unreadable: {exc}")
        )
    return SetCheck(location.uri, root, manifest, tuple(results), tuple(toc))


_SIGNATURE_RESULTS: dict[Verdict, CheckResult] = {
    "verified": CheckResult(
        "signature", ok=True, critical=True, detail=f"HMAC-SHA256 matches {ENV_VAR}"
    ),
    "unverified": CheckResult(
        "signature", ok=False, critical=False, detail=f"signed, not verified (no {ENV_VAR})"
    ),
    "unsigned": CheckResult(
        "signature",
        ok=True,
        critical=False,
        detail=f"unsigned (set {ENV_VAR} to sign new sets and accept only signed ones)",
    ),
}


def _refused(location: Location, workdir: Path, name: str, detail: str) -> SetCheck:
    # Nothing of the set was kept: its manifest cannot be trusted to say what to read.
    return SetCheck(
        location.uri, workdir, None, (CheckResult(name, ok=False, critical=True, detail=detail),)
    )


def _artifacts(fetched: FetchedSet) -> list[CheckResult]:
    results = []
    bad = 0
    manifest = fetched.manifest
    for artifact in manifest.artifacts:
        stored = fetched.sizes.get(artifact.path)
        path = fetched.root / artifact.path
        # The stored size comes from the listing: an artifact of the wrong size was never
        # downloaded. A downloaded one is measured again (it may have changed meanwhile).
        problem = None
        if stored is None or (stored == artifact.size and not path.is_file()):
            problem = "missing"
        elif stored != artifact.size:
            problem = _size_problem(stored, artifact.size)
        elif path.stat().st_size != artifact.size:
            problem = _size_problem(path.stat().st_size, artifact.size)
        elif sha256_file(path) != artifact.sha256:
            problem = "content differs from the manifest's SHA-256 (corrupted or altered)"
        if problem:
            bad += 1
            results.append(
                CheckResult(f"artifact {artifact.path}", ok=False, critical=True, detail=problem)
            )
    for extra in fetched.extra:
        results.append(
            CheckResult(
                f"extra {_shown(extra)}",
                ok=False,
                critical=True,
                detail="present but not named by the manifest",
            )
        )
    total = sum(a.size for a in manifest.artifacts)
    count = len(manifest.artifacts)
    results.append(
        CheckResult(
            "artifacts",
            ok=bad == 0 and not fetched.extra,
            critical=True,
            detail=f"{count - bad}/{count} artifacts match size and SHA-256 ({total} bytes)"
            + (f"; {len(fetched.extra)} extra" if fetched.extra else ""),
        )
    )
    return results


def _size_problem(size: int, expected: int) -> str:
    return f"size {size} bytes, manifest says {expected} (truncated?)"


def _shown(key: str) -> str:
    # Keys come from the store listing, unchecked: keep each on one line of output.
    return key if key.isprintable() else shown(key)


def require_good_set(location: Location, *, workdir: Path) -> CheckedSet:
    """Check the set and return it only when every critical check passed.

    Raises:
        VerificationFailed: a check failed; the message lists every failure.
        ObjectNotFound: nothing at all at the location.

    """
    checked = check_set(location, workdir=workdir)
    if not checked.ok or checked.manifest is None:
        raise VerificationFailed(
            f"the backup set at {location.uri} failed its checks; nothing was restored:\n"
            + render(failures(checked.results)),
            checks=checked.results,
        )
    return CheckedSet(
        checked.location, checked.root, checked.manifest, checked.results, checked.toc
    )


@dataclass(frozen=True)
class CheckedSet(SetCheck):
    """A set that passed every check: its manifest is present."""

    manifest: Manifest


def _data_entries(manifest: Manifest, toc: list[TocEntry]) -> CheckResult:
    data = [e for e in toc if e.kind == "TABLE DATA"]
    missing = [
        _shown(t.qualified)
        for t in manifest.tables
        if not any(e.names(t.schema, t.name) for e in data)
    ]
    if missing:
        return CheckResult(
            "dump readable",
            ok=False,
            critical=True,
            detail=f"no data entry for {', '.join(missing)}",
        )
    return CheckResult(
        "dump readable",
        ok=True,
        critical=True,
        detail=f"{len(toc)} entries, data for all {len(manifest.tables)} tables",
    )
