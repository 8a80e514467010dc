"""One drill run: timed phases, measured RTO and RPO, every check, and the evidence record.

A drill is seed -> backup -> disaster -> detect -> restore -> verify. RTO is measured from the
moment the disaster is complete (service lost) to the moment the restored service is
verified; RPO from the last write committed before the disaster to the newest write present
after the restore (canary writes, :mod:`harness.drill.canary`, make both ends visible). Targets
come from the environment profile. The evidence record is JSON in a versioned format,
published as a JSON Schema in ``docs/drill-evidence.schema.json``.

Long phases are never silent: each phase logs when it starts and ends, and every
:data:`HEARTBEAT` seconds while it runs (pytest's live log shows these lines).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.config import RecoveryTargets
from harness.redact import get_logger, redact, redact_values
from harness.sets.take import BackupResult
from harness.verify.checks import CheckResult
from harness.verify.compare import Comparison, Fingerprint
from harness.verify.data import DataFingerprint

EVIDENCE_SCHEMA = "drill-evidence/3"
"""The version of the evidence format (``docs/drill-evidence.schema.json``)."""

HEARTBEAT = 5.0
"""Seconds between "still running" lines while a phase runs."""
MAX_DIFFERENCE_LINES = 400
"""Lines of catalog and data differences kept in the evidence (the checks name the rest)."""

log = get_logger(__name__)


@dataclass(frozen=True)
class TableEvidence:
    """Row count and content hash of one table in the reference and after recovery.

    ``recovered_rows`` and ``recovered_digest`` are None when the drill compared the
    table without recording the recovered side (its check still says how it compared).
    """

    name: str
    reference_rows: int | None
    reference_digest: str | None
    recovered_rows: int | None
    recovered_digest: str | None
    ok: bool
    detail: str


@dataclass(frozen=True)
class ArtifactEvidence:
    """One file of the backup set, as its manifest lists it."""

    path: str
    kind: str
    size: int
    sha256: str


@dataclass(frozen=True)
class BackupEvidence:
    """The backup set a drill took: where, its manifest digest, what it holds."""

    location: str
    manifest_sha256: str
    source_server_version: str
    tools: dict[str, str]
    artifacts: tuple[ArtifactEvidence, ...]


@dataclass(frozen=True)
class Phase:
    """One timed step of a drill."""

    name: str
    started_at: str
    seconds: float
    detail: str = ""


@dataclass
class DrillRun:
    """Collects what happens during one drill; :meth:`evidence` freezes it."""

    scenario: str
    parameters: dict[str, str]
    targets: RecoveryTargets
    phases: list[Phase] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    test: str = ""  # the pytest node id that ran the drill
    method: str = ""  # the backup method, as the drill's parameter names it
    backup: BackupEvidence | None = None
    tables: list[TableEvidence] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    _disaster_done: float | None = None
    _reference: DataFingerprint | None = None  # the backup's data, until a comparison says more

    @contextmanager
    def phase(self, name: str, detail: str = "") -> Iterator[None]:
        """Time the enclosed block as phase ``name`` (recorded even when it raises).

        The phase logs its start and end, and a line every :data:`HEARTBEAT` seconds while
        it runs, so that a long backup or restore is never silent in the terminal.
        """
        started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        started = time.monotonic()
        label = f"{self.scenario}{f' [{self.method}]' if self.method else ''}: {name}"
        log.info("%s started%s", label, f" ({detail})" if detail else "")
        done = threading.Event()
        ticker = threading.Thread(
            target=_heartbeat, args=(done, label, started), name=f"heartbeat-{name}", daemon=True
        )
        ticker.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            done.set()
            ticker.join()
            if name == "disaster":
                # Service is lost once the disaster is complete (encrypting a large table
                # takes the attacker a while; that is not recovery time).
                self._disaster_done = time.monotonic()
            seconds = time.monotonic() - started
            self.phases.append(Phase(name, started_at, seconds, redact(detail)))
            log.info("%s %s after %.1f s", label, "done" if ok else "FAILED", seconds)

    def verified(self) -> float:
        """Mark the service verified; return (and record) the RTO in seconds."""
        if self._disaster_done is None:
            raise RuntimeError("verified() before any disaster phase")
        self.rto_seconds = time.monotonic() - self._disaster_done
        return self.rto_seconds

    def record_rpo(self, last_write_before: datetime, newest_after: datetime | None) -> float:
        """Record the data-loss window between two committed canary writes."""
        if newest_after is None:
            self.rpo_seconds = float("inf")
        else:
            self.rpo_seconds = max(0.0, (last_write_before - newest_after).total_seconds())
        return self.rpo_seconds

    def record_backup(self, result: BackupResult) -> BackupResult:
        """Record which backup set the drill took (location, manifest digest, versions)."""
        manifest = result.manifest
        self.facts["backup set"] = result.location
        self.facts["manifest sha256"] = manifest.digest
        self.facts["source server"] = f"PostgreSQL {manifest.source_server_version}"
        self.facts["tools"] = ", ".join(f"{k} {v}" for k, v in sorted(manifest.tools.items()))
        self.facts["artifacts"] = (
            f"{len(manifest.artifacts)} files, {sum(a.size for a in manifest.artifacts)} bytes"
        )
        self.backup = BackupEvidence(
            location=result.location,
            manifest_sha256=manifest.digest,
            source_server_version=manifest.source_server_version,
            tools={str(k): str(v) for k, v in manifest.tools.items()},
            artifacts=tuple(
                ArtifactEvidence(a.path, a.kind, a.size, a.sha256) for a in manifest.artifacts
            ),
        )
        if result.fingerprint is not None and not self.tables:
            self._reference = result.fingerprint.data
        return result

    def add(self, results: Iterable[CheckResult]) -> None:
        """Add check results (all are kept, passing or not)."""
        self.checks.extend(results)

    def record_comparison(
        self, expected: Fingerprint, actual: Fingerprint, comparison: Comparison
    ) -> Comparison:
        """Add a comparison's checks, and keep both sides' row counts and content hashes.

        Args:
            expected: the reference fingerprint (before the disaster, or the backup's).
            actual: the fingerprint after recovery.
            comparison: ``compare(expected, actual, ...)``.

        Returns:
            ``comparison``, for chaining.

        """
        self.add(comparison.checks)
        verdicts = {c.name.removeprefix("data "): c for c in comparison.checks}
        wanted = {t.qualified: t for t in expected.data.tables}
        have = {t.qualified: t for t in actual.data.tables}
        self.tables = []
        for name in sorted(set(wanted) | set(have)):
            check = verdicts.get(name)
            if check is None:
                continue  # ignored by the comparison (e.g. a kept copy)
            before, after = wanted.get(name), have.get(name)
            self.tables.append(
                TableEvidence(
                    name=name,
                    reference_rows=before.rows if before else None,
                    reference_digest=before.digest if before else None,
                    recovered_rows=after.rows if after else None,
                    recovered_digest=after.digest if after else None,
                    ok=check.ok,
                    detail=check.detail,
                )
            )
        self.differences.extend(comparison.diff.splitlines())
        return comparison

    def verdict(self) -> list[CheckResult]:
        """RTO and RPO against the targets, followed by every other check."""
        rto, rpo = self.rto_seconds, self.rpo_seconds
        want_rto, want_rpo = self.targets.rto_seconds, self.targets.rpo_seconds
        timing = [
            CheckResult(
                "RTO",
                ok=rto is not None and rto <= want_rto,
                critical=True,
                detail=f"measured {_duration(rto)}, target {_duration(want_rto)}",
            ),
            CheckResult(
                "RPO",
                ok=rpo is not None and rpo <= want_rpo,
                critical=True,
                detail=f"measured {_duration(rpo)}, target {_duration(want_rpo)}",
            ),
        ]
        return timing + self.checks

    @property
    def passed(self) -> bool:
        """True when RTO, RPO and every critical check passed."""
        return all(c.ok or not c.critical for c in self.verdict())

    def failures(self) -> str:
        """The failed critical checks, one a line."""
        return "\n".join(f"{c.name}: {c.detail}" for c in self.verdict() if c.critical and not c.ok)

    def evidence(self) -> dict[str, Any]:
        """The evidence record: a JSON-ready dict whose every value is already redacted.

        The format is published as a JSON Schema in ``docs/drill-evidence.schema.json``
        (:data:`EVIDENCE_SCHEMA` names its version). An unbounded RPO (nothing written
        before the disaster survived) is ``rpo_seconds: null`` with ``rpo_unbounded: true``:
        JSON has no infinity.
        """
        rpo = self.rpo_seconds
        unbounded = rpo is not None and math.isinf(rpo)
        backup = None
        if self.backup is not None:
            backup = {
                **_redacted_fields(self.backup),
                "artifacts": [_redacted_fields(a) for a in self.backup.artifacts],
            }
        # Field names are this format's own; only what they hold can carry a secret (a
        # short password equal to "ok" must not rename the "ok" field).
        return {
            "schema": EVIDENCE_SCHEMA,
            "test": redact(self.test),
            "scenario": redact(self.scenario),
            "method": redact(self.method),
            "parameters": redact_values(self.parameters),
            "environment": redact(self.targets.environment),
            "targets": {
                "rto_seconds": self.targets.rto_seconds,
                "rpo_seconds": self.targets.rpo_seconds,
            },
            "measured": {
                "rto_seconds": self.rto_seconds,
                "rpo_seconds": None if unbounded else rpo,
                "rpo_unbounded": unbounded,
            },
            "passed": self.passed,
            "phases": [_redacted_fields(p) for p in self.phases],
            "checks": [_redacted_fields(c) for c in self.verdict()],
            "facts": redact_values(self.facts),
            "backup": backup,
            "tables": [_redacted_fields(t) for t in self._tables()],
            "differences": redact_values(self.differences[:MAX_DIFFERENCE_LINES]),
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _tables(self) -> list[TableEvidence]:
        """The per-table evidence; without a recorded comparison, the backup's side."""
        if self.tables or self._reference is None:
            return self.tables
        verdicts = {c.name.removeprefix("data "): c for c in self.checks}
        rows = []
        for table in self._reference.tables:
            check = verdicts.get(table.qualified)
            if check is not None:
                rows.append(
                    TableEvidence(
                        table.qualified,
                        table.rows,
                        table.digest,
                        None,
                        None,
                        check.ok,
                        check.detail,
                    )
                )
        return rows

    def write(self, directory: Path, name: str) -> Path:
        """Write the evidence record atomically to ``directory/name.json`` (UTF-8).

        The record is redacted value by value before it is serialised, never as text
        afterwards (see :mod:`harness.redact`); NaN and infinity are refused rather than
        written as the non-JSON ``NaN`` / ``Infinity``.

        Raises:
            ValueError: a measurement is NaN or infinite (a bug in the drill run).

        """
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.json"
        tmp = directory / f".{name}.json.tmp"
        text = json.dumps(self.evidence(), indent=2, ensure_ascii=False, allow_nan=False)
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)
        return path


def _redacted_fields(
    record: Phase | CheckResult | TableEvidence | BackupEvidence | ArtifactEvidence,
) -> dict[str, Any]:
    return {name: redact_values(value) for name, value in asdict(record).items()}


def _heartbeat(done: threading.Event, label: str, started: float) -> None:
    """Log that ``label`` is still running every :data:`HEARTBEAT` seconds until ``done``."""
    while not done.wait(HEARTBEAT):
        log.info("%s still running after %.0f s", label, time.monotonic() - started)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not measured"
    if seconds == float("inf"):
        return "unbounded (nothing written before the disaster survived)"
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds:.1f} s"
