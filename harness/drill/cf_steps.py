"""Steps of the Cloudflare drills: the stack, canaries for the RPO, disasters, detection.

A :class:`CloudflareStack` is one throwaway local project with the application's D1
database (binding ``DB``), KV namespace (``SESSIONS``) and R2 bucket (``IMAGES``), the R2
bridge, and scratch space. Canaries are timestamped writes in each store: one just before
the backup, one after it (the write the disaster will cost), so the RPO is measured from the
newest canary that survives, as in the PostgreSQL drills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.cloudflare import d1
from harness.cloudflare.bridge import Bridge
from harness.cloudflare.d1_export import D1Fingerprint, compare_fingerprints
from harness.cloudflare.kv import WorkersKv
from harness.cloudflare.r2 import BridgeBucket
from harness.cloudflare.wrangler import Wrangler
from harness.drill.cf_dataset import DATABASE
from harness.drill.run import DrillRun
from harness.errors import ToolFailed
from harness.infra.wrangler_project import WranglerProject
from harness.kv.base import KvEntry
from harness.objects.manifest import ObjectManifest
from harness.verify.checks import CheckResult

KV_BINDING = "SESSIONS"
R2_BINDING = "IMAGES"
BUCKET = "machipoke-images"
D1_NAME = "machipoke-db"
_CANARY = "canary:"


@dataclass
class CloudflareStack:
    """The drill's project, its three stores, the bridge, and scratch space."""

    project: WranglerProject
    bridge: Bridge
    kv: WorkersKv
    bucket: BridgeBucket
    workdir: Path

    @property
    def wrangler(self) -> Wrangler:
        """The project's wrangler."""
        return self.project.wrangler


def make_stack(project: WranglerProject, workdir: Path) -> CloudflareStack:
    """Declare the application's stores in ``project`` (the bridge is not started)."""
    project.add_d1(DATABASE, D1_NAME)
    project.add_kv(KV_BINDING)
    project.add_r2(R2_BINDING, BUCKET)
    bridge = project.bridge()
    kv = WorkersKv(project.wrangler, workdir=workdir / "kv", binding=KV_BINDING)
    return CloudflareStack(project, bridge, kv, BridgeBucket(bridge, BUCKET), workdir)


# -- canaries --------------------------------------------------------------------------------


def d1_canary(stack: CloudflareStack, label: str) -> datetime:
    """Write a canary row into D1; its time."""
    at = datetime.now(UTC)
    stamp = at.isoformat(timespec="microseconds")
    # wrangler takes no bound parameters: the label is reduced to letters, digits, spaces
    # and dashes, the time is an ISO string we made.
    d1.execute(
        stack.wrangler,
        DATABASE,
        f"INSERT INTO drill_canary (label, written_at) VALUES ('{_safe(label)}', '{stamp}')",  # noqa: S608
    )
    return at


def d1_newest_canary(stack: CloudflareStack) -> datetime | None:
    """The newest canary D1 holds (None when there is none, or no table)."""
    try:
        rows = d1.query(stack.wrangler, DATABASE, "SELECT max(written_at) AS t FROM drill_canary")
    except ToolFailed:  # no such table: no canary survived
        return None
    value = rows[0].get("t") if rows else None
    return datetime.fromisoformat(str(value)) if value else None


def kv_canary(stack: CloudflareStack) -> datetime:
    """Write a canary key into KV; its time."""
    at = datetime.now(UTC)
    stamp = at.isoformat(timespec="microseconds")
    stack.kv.write_many([KvEntry.string(f"{_CANARY}{stamp}".encode(), stamp.encode())])
    return at


def kv_newest_canary(stack: CloudflareStack) -> datetime | None:
    """The newest canary key KV holds."""
    stamps = [k.name.removeprefix(_CANARY) for k in stack.kv.list_keys(_CANARY)]
    return datetime.fromisoformat(max(stamps)) if stamps else None


def r2_canary(stack: CloudflareStack) -> datetime:
    """Upload a canary object into R2; its time."""
    at = datetime.now(UTC)
    stamp = at.isoformat(timespec="microseconds")
    path = stack.workdir / "canary.txt"
    path.write_text(stamp, encoding="utf-8")
    stack.bucket.upload(f"canary/{stamp}", path, content_type="text/plain", metadata={})
    return at


def r2_newest_canary(stack: CloudflareStack) -> datetime | None:
    """The newest canary object R2 holds."""
    found = [
        o.key.removeprefix("canary/")
        for o in stack.bucket.list_objects()
        if o.key.startswith("canary/")
    ]
    return datetime.fromisoformat(max(found)) if found else None


# -- disasters -------------------------------------------------------------------------------


def corrupt_d1(stack: CloudflareStack) -> str:
    """Delete the low-rated reviews and drop the favorites table; what was done."""
    results = d1.execute(
        stack.wrangler,
        DATABASE,
        "SELECT count(*) AS n FROM reviews WHERE rating <= 2; "
        "DELETE FROM reviews WHERE rating <= 2; DROP TABLE favorites",
    )
    return f"{results[0][0]['n']} reviews deleted, table favorites dropped"


def lose_kv(stack: CloudflareStack) -> str:
    """Delete every key of the namespace in bulk; what was done."""
    keys = [k.name for k in stack.kv.list_keys()]
    stack.kv.delete_many(keys)
    return f"all {len(keys)} keys of {KV_BINDING} deleted"


def lose_r2_objects(stack: CloudflareStack) -> str:
    """Delete every third object and overwrite one with other bytes; what was done."""
    keys = [o.key for o in stack.bucket.list_objects() if o.key.startswith("spots/")]
    gone = keys[::3]
    stack.bucket.delete_many(gone)
    victim = keys[1]
    path = stack.workdir / "overwrite.bin"
    path.write_bytes(b"encrypted by the attacker")
    stack.bucket.upload(victim, path, content_type="application/octet-stream", metadata={})
    return f"{len(gone)} of {len(keys)} images deleted, {victim} overwritten"


def destroy_stack(stack: CloudflareStack) -> str:
    """D1, KV and R2 destroyed together: the whole local state deleted; what was done."""
    stack.bridge.stop()
    stack.project.wipe_state()
    return "D1 database, KV namespace and R2 bucket destroyed together (local state deleted)"


# -- detection and evidence -----------------------------------------------------------------


def detected(name: str, checks: list[CheckResult]) -> CheckResult:
    """A check that passes when ``checks`` found the damage (at least one critical failure)."""
    failed = [c for c in checks if c.critical and not c.ok]
    return CheckResult(
        f"detect {name}",
        ok=bool(failed),
        critical=True,
        detail="; ".join(f"{c.name}: {c.detail}" for c in failed[:4])
        if failed
        else "the comparison found nothing wrong: the disaster went unnoticed",
    )


def detect_d1(stack: CloudflareStack, reference: D1Fingerprint) -> CheckResult:
    """Compare D1 now with the reference fingerprint; the detection check."""
    now = d1.fingerprint(stack.wrangler, DATABASE, stack.workdir)
    return detected("d1 damage", compare_fingerprints(reference, now))


def bound_rows(stack: CloudflareStack, reference: D1Fingerprint) -> CheckResult:
    """What the application reads through its binding: every table's rows, one query."""
    # Table names from the fingerprint, quoted as identifiers: no value is spliced.
    counts = ", ".join(
        f"(SELECT count(*) FROM {_ident(t.name)}) AS {_ident(t.name)}"  # noqa: S608
        for t in reference.tables
    )
    try:
        row = d1.query(stack.wrangler, DATABASE, "SELECT " + counts)[0]
    except ToolFailed as exc:
        return CheckResult("d1 rows through the binding", ok=False, critical=True, detail=str(exc))
    wrong = [
        f"{t.name} {row.get(t.name)} rows, reference {t.rows}"
        for t in reference.tables
        if row.get(t.name) != t.rows
    ]
    return CheckResult(
        "d1 rows through the binding",
        ok=not wrong,
        critical=True,
        detail=f"{DATABASE} serves all {reference.total_rows} rows of the reference"
        if not wrong
        else "; ".join(wrong),
    )


def record_set(run: DrillRun, label: str, manifest: ObjectManifest, location: str) -> None:
    """Add a backup set's identity to the run's facts (location, manifest digest, size)."""
    run.facts[f"{label} set"] = (
        f"{location} backups/{manifest.kind}/{manifest.set_id} (manifest sha256 "
        f"{manifest.digest[:16]}..., {len(manifest.entries)} objects, {manifest.total_size} bytes)"
    )


def rpo(run: DrillRun, written: list[datetime], survived: list[datetime | None]) -> float:
    """Record the RPO: the last write before the disaster against the newest that survived.

    Args:
        run: the drill run.
        written: the last canary written to each store before the disaster.
        survived: the newest canary each store holds after the recovery (same order).

    """
    gaps = [
        float("inf") if after is None else max(0.0, (before - after).total_seconds())
        for before, after in zip(written, survived, strict=True)
    ]
    run.rpo_seconds = max(gaps)
    return run.rpo_seconds


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _safe(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in " -_")
