"""One drill run: timed phases, measured RTO and RPO, every check, and the evidence record.

A drill is seed -> backup -> disaster -> detect -> restore -> verify. RTO is measured from the
moment the disaster is complete (service lost) to the moment the restored service is
verified; RPO from the last write committed before the disaster to the newest write present
after the restore (canary writes, :mod:`harness.drill.canary`, make both ends visible). Targets
come from the environment profile. The evidence record is JSON in a versioned format,
published as a JSON Schema in ``docs/drill-evidence.schema.json``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.config import RecoveryTargets
from harness.redact import redact, redact_values
from harness.sets.take import BackupResult
from harness.verify.checks import CheckResult

EVIDENCE_SCHEMA = "drill-evidence/2"
"""The version of the evidence format (``docs/drill-evidence.schema.json``)."""


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
    _disaster_done: float | None = None

    @contextmanager
    def phase(self, name: str, detail: str = "") -> Iterator[None]:
        """Time the enclosed block as phase ``name`` (recorded even when it raises)."""
        started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        started = time.monotonic()
        try:
            yield
        finally:
            if name == "disaster":
                # Service is lost once the disaster is complete (encrypting a large table
                # takes the attacker a while; that is not recovery time).
                self._disaster_done = time.monotonic()
            self.phases.append(Phase(name, started_at, time.monotonic() - started, redact(detail)))

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
        return result

    def add(self, results: Iterable[CheckResult]) -> None:
        """Add check results (all are kept, passing or not)."""
        self.checks.extend(results)

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
        # Field names are this format's own; only what they hold can carry a secret (a
        # short password equal to "ok" must not rename the "ok" field).
        return {
            "schema": EVIDENCE_SCHEMA,
            "scenario": redact(self.scenario),
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
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

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


def _redacted_fields(record: Phase | CheckResult) -> dict[str, Any]:
    return {name: redact_values(value) for name, value in asdict(record).items()}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not measured"
    if seconds == float("inf"):
        return "unbounded (nothing written before the disaster survived)"
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds:.1f} s"
