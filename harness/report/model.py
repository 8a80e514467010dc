"""What the report shows, read back from evidence records: drills, their outcomes, the run.

The HTML report, the run's index and the history are all built from the evidence files the
drills wrote (``docs/drill-evidence.schema.json``), never from in-memory state, so that the
process assembling them (the pytest controller under xdist) needs nothing but the files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.drill.run import (
    EVIDENCE_SCHEMA,
    ArtifactEvidence,
    BackupEvidence,
    Phase,
    TableEvidence,
)
from harness.report.labels import Labels
from harness.verify.checks import CheckResult

OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class Measure:
    """A measured duration against its target (seconds)."""

    measured: float | None
    target: float
    unbounded: bool = False

    @property
    def ok(self) -> bool:
        """True when measured and within the target."""
        return self.measured is not None and not self.unbounded and self.measured <= self.target

    @property
    def share(self) -> float | None:
        """Measured as a fraction of the target (None when not measured or unbounded)."""
        if self.measured is None or self.unbounded or self.target <= 0:
            return None
        return self.measured / self.target


@dataclass(frozen=True)
class DrillEvidence:
    """One evidence record, typed."""

    test: str
    scenario: str
    method: str
    parameters: tuple[tuple[str, str], ...]
    environment: str
    rto: Measure
    rpo: Measure
    passed: bool
    phases: tuple[Phase, ...]
    checks: tuple[CheckResult, ...]
    facts: tuple[tuple[str, str], ...]
    backup: BackupEvidence | None
    tables: tuple[TableEvidence, ...]
    differences: tuple[str, ...]
    written_at: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DrillEvidence:
        """Read a ``drill-evidence/3`` record.

        Raises:
            ValueError: another format or version, or a field is missing.

        """
        if record.get("schema") != EVIDENCE_SCHEMA:
            raise ValueError(f"not a {EVIDENCE_SCHEMA} record: {record.get('schema')!r}")
        try:
            measured, targets = record["measured"], record["targets"]
            backup = record["backup"]
            return cls(
                test=str(record["test"]),
                scenario=str(record["scenario"]),
                method=str(record["method"]),
                parameters=tuple((str(k), str(v)) for k, v in record["parameters"].items()),
                environment=str(record["environment"]),
                rto=Measure(measured["rto_seconds"], float(targets["rto_seconds"])),
                rpo=Measure(
                    measured["rpo_seconds"],
                    float(targets["rpo_seconds"]),
                    unbounded=bool(measured["rpo_unbounded"]),
                ),
                passed=bool(record["passed"]),
                phases=tuple(Phase(**p) for p in record["phases"]),
                checks=tuple(CheckResult(**c) for c in record["checks"]),
                facts=tuple((str(k), str(v)) for k, v in record["facts"].items()),
                backup=None
                if backup is None
                else BackupEvidence(
                    location=backup["location"],
                    manifest_sha256=backup["manifest_sha256"],
                    source_server_version=backup["source_server_version"],
                    tools=dict(backup["tools"]),
                    artifacts=tuple(ArtifactEvidence(**a) for a in backup["artifacts"]),
                ),
                tables=tuple(TableEvidence(**t) for t in record["tables"]),
                differences=tuple(record["differences"]),
                written_at=str(record["written_at"]),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed {EVIDENCE_SCHEMA} record: {exc!r}") from exc

    @classmethod
    def load(cls, path: Path) -> DrillEvidence:
        """Read an evidence file.

        Raises:
            ValueError: not JSON, or not a record of the current version.

        """
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from exc
        return cls.from_record(record)

    def failed_checks(self) -> list[CheckResult]:
        """Critical checks that failed, RTO and RPO included."""
        return [c for c in self.checks if c.critical and not c.ok]

    def integrity(self) -> tuple[int, int]:
        """``(passed, total)`` of the checks other than RTO and RPO."""
        rest = [c for c in self.checks if c.name not in ("RTO", "RPO")]
        return sum(1 for c in rest if c.ok or not c.critical), len(rest)


@dataclass(frozen=True)
class DrillEntry:
    """One drill of the run: how pytest saw it, and its evidence when it wrote any."""

    test: str
    outcome: str
    message: str = ""
    evidence: DrillEvidence | None = None
    evidence_file: str | None = None  # relative to the run directory
    facts: tuple[tuple[str, str], ...] = ()  # what a drill without a run recorded

    @property
    def anchor(self) -> str:
        """The HTML id of the drill's section."""
        return "drill-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.test).strip("-")

    @property
    def scenario(self) -> str:
        """The scenario (from the evidence, else the test function's name)."""
        if self.evidence is not None:
            return self.evidence.scenario
        name = self.test.rsplit("::", 1)[-1].split("[", 1)[0]
        return name.removeprefix("test_")

    @property
    def method(self) -> str:
        """The method (from the evidence, else the test's parameter id)."""
        if self.evidence is not None:
            return self.evidence.method
        return self._parameter_id

    @property
    def variant(self) -> str:
        """What tells this drill from its scenario's others: the test's parameter id.

        The method alone does not (one method, three kinds of deletion); a drill without
        parameters shows its method.
        """
        return self._parameter_id or self.method

    @property
    def _parameter_id(self) -> str:
        """What pytest shows in brackets after the test's name (empty without parameters)."""
        match = re.search(r"\[(.*)\]$", self.test)
        return match.group(1) if match else ""

    @property
    def title(self) -> str:
        """``scenario [variant]``."""
        return f"{self.scenario} [{self.variant}]" if self.variant else self.scenario

    @property
    def key(self) -> str:
        """What identifies the same drill across runs: the test id."""
        return self.test


@dataclass(frozen=True)
class RunInfo:
    """The session: when, where, by whom, against which targets, with which versions."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    operator: str
    host: str
    environment: str
    rto_target: float
    rpo_target: float
    versions: tuple[tuple[str, str], ...]
    infrastructure: tuple[tuple[str, str], ...]
    lang: str = "en"


def duration(seconds: float | None, labels: Labels, *, unbounded: bool = False) -> str:
    """A duration in the largest sensible unit: ``2.7 s``, ``12 min``, ``4 h``, ``7 d``."""
    if unbounded:
        return labels("unbounded")
    if seconds is None:
        return labels("not_measured")
    for unit, size in (("unit_d", 86400.0), ("unit_h", 3600.0), ("unit_min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {labels(unit)}"
    return f"{seconds:.1f} {labels('unit_s')}"


def failure_sentence(entry: DrillEntry, labels: Labels) -> str:
    """What failed, in one sentence (empty for a drill that did not fail)."""
    if entry.outcome not in ("failed", "error"):
        return ""
    evidence = entry.evidence
    reasons: list[str] = []
    if evidence is not None:
        for metric, measure in (("RTO", evidence.rto), ("RPO", evidence.rpo)):
            if measure.ok:
                continue
            if measure.measured is None and not measure.unbounded:
                reasons.append(labels("not_reached", metric=metric))
            else:
                reasons.append(
                    labels(
                        "missed",
                        metric=metric,
                        measured=duration(measure.measured, labels, unbounded=measure.unbounded),
                        target=duration(measure.target, labels),
                    )
                )
        others = [c for c in evidence.failed_checks() if c.name not in ("RTO", "RPO")]
        shown = others[: max(0, 2 - len(reasons))]
        reasons += [f"{c.name}: {c.detail}" for c in shown]
        if len(others) > len(shown):
            reasons.append(labels("more_failures", n=len(others) - len(shown)))
    if not reasons:
        reasons.append(entry.message or labels(entry.outcome))
    reason = "; ".join(_one_line(r) for r in reasons)
    return labels("failed_sentence", drill=entry.title, reason=reason.rstrip("."))


def _one_line(text: str, limit: int = 240) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
