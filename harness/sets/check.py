"""Check a backup set without restoring it (C9): hashes, presence, readability.

Every artifact the manifest names must be present with its size and SHA-256; nothing may be
present that the manifest does not name; the dump's table of contents must be readable and
hold data for every table the manifest counted; the globals must parse. All checks run and
all results are returned: a truncated, bit-flipped, missing or extra artifact is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import DrillError, ManifestError, VerificationFailed
from harness.pg.binaries import PgBinaries, client_tools_for
from harness.pg.globals import Globals
from harness.pg.toc import TocEntry, read_toc
from harness.sets.manifest import MANIFEST, Location, Manifest, fetch
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

    Args:
        location: the set (local directory or S3 prefix).
        workdir: where an S3 set is downloaded to.
        binaries: client tools to read the dump (default: matching the set's source).

    Raises:
        ObjectNotFound: there is no manifest at all (not a backup set).

    """
    root, extra_keys = fetch(location, workdir)
    results: list[CheckResult] = []
    try:
        manifest = Manifest.from_json((root / MANIFEST).read_text())
    except ManifestError as exc:
        results.append(CheckResult("manifest", ok=False, critical=True, detail=str(exc)))
        return SetCheck(location.uri, root, None, tuple(results))
    results.append(
        CheckResult(
            "manifest",
            ok=True,
            critical=True,
            detail=f"format {manifest.format_version}, {len(manifest.artifacts)} artifacts, "
            f"taken {manifest.created_at} from PostgreSQL {manifest.source_server_version}",
        )
    )
    results += _artifacts(root, manifest, extra_keys, is_s3=location.is_s3)
    toc: list[TocEntry] = []
    try:
        tools = binaries or client_tools_for(manifest.source_major)
        dump = root / manifest.dump_path()
        toc = read_toc(tools, dump)
        results.append(_data_entries(manifest, toc))
    except (DrillError, ManifestError) as exc:
        results.append(CheckResult("dump readable", ok=False, critical=True, detail=str(exc)))
    try:
        Globals.from_json((root / manifest.artifact("globals").path).read_text())
        results.append(CheckResult("globals", ok=True, critical=True, detail="roles.json parses"))
    except (OSError, ValueError, KeyError, TypeError, DrillError) as exc:
        results.append(
            CheckResult("globals", ok=False, critical=True, detail=f"roles.json unreadable: {exc}")
        )
    return SetCheck(location.uri, root, manifest, tuple(results), tuple(toc))


def _artifacts(
    root: Path, manifest: Manifest, extra_keys: list[str], *, is_s3: bool
) -> list[CheckResult]:
    results = []
    bad = 0
    for artifact in manifest.artifacts:
        path = root / artifact.path
        problem = None
        if not path.is_file():
            problem = "missing"
        elif path.stat().st_size != artifact.size:
            problem = (
                f"size {path.stat().st_size} bytes, manifest says {artifact.size} (truncated?)"
            )
        elif sha256_file(path) != artifact.sha256:
            problem = "content differs from the manifest's SHA-256 (corrupted or altered)"
        if problem:
            bad += 1
            results.append(
                CheckResult(f"artifact {artifact.path}", ok=False, critical=True, detail=problem)
            )
    named = {a.path for a in manifest.artifacts} | {MANIFEST}
    extras = (
        list(extra_keys)
        if is_s3
        else sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).as_posix() not in named
        )
    )
    for extra in extras:
        results.append(
            CheckResult(
                f"extra {extra}",
                ok=False,
                critical=True,
                detail="present but not named by the manifest",
            )
        )
    total = sum(a.size for a in manifest.artifacts)
    results.append(
        CheckResult(
            "artifacts",
            ok=bad == 0 and not extras,
            critical=True,
            detail=f"{len(manifest.artifacts) - bad}/{len(manifest.artifacts)} artifacts match "
            f"size and SHA-256 ({total} bytes)" + (f"; {len(extras)} extra" if extras else ""),
        )
    )
    return results


def require_good_set(location: Location, *, workdir: Path) -> CheckedSet:
    """Check the set and return it only when every critical check passed.

    Raises:
        VerificationFailed: a check failed; the message lists every failure.
        ObjectNotFound: there is no manifest at all.

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
    with_data = {(e.schema, e.name) for e in toc if e.kind == "TABLE DATA"}
    missing = [t.qualified for t in manifest.tables if (t.schema, t.name) not in with_data]
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
