"""A run's output directory: ``reports/<timestamp>/`` with its index, and ``reports/latest``.

Layout of one run (``docs/reports.md``)::

    reports/
      history.jsonl              every run, one line each (harness.report.history)
      latest -> 20261125T213923Z
      20261125T213923Z/
        report.html              the self-contained HTML report
        junit.xml                JUnit XML for CI
        drills.log               the session's log (redacted)
        index.json               the run and every drill (drill-run-index/1)
        evidence/<drill>.json    one evidence record per drill (drill-evidence/3)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.redact import redact_values
from harness.report.model import DrillEntry, RunInfo

INDEX_SCHEMA = "drill-run-index/1"
INDEX_FILE = "index.json"
LATEST = "latest"


def new_run_directory(root: Path, *, now: datetime | None = None) -> Path:
    """Create ``root/<UTC timestamp>`` (with a suffix when that name is taken) and return it."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(100):
        candidate = root / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot make a new run directory under {root}: 100 names taken")


def point_latest(run_dir: Path) -> Path:
    """Make ``<root>/latest`` a relative symlink to ``run_dir``, replaced atomically."""
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    tmp.replace(link)
    return link


def run_index(
    run: RunInfo, entries: Sequence[DrillEntry], outputs: dict[str, str | None]
) -> dict[str, Any]:
    """The run's index (``docs/drill-run-index.schema.json``), every value redacted."""
    drills = []
    for entry in entries:
        evidence = entry.evidence
        drills.append(
            {
                "test": entry.test,
                "scenario": entry.scenario,
                "method": entry.method,
                "outcome": entry.outcome,
                "message": entry.message,
                "evidence": entry.evidence_file,
                "passed": evidence.passed if evidence else entry.outcome == "passed",
                "rto_seconds": evidence.rto.measured if evidence else None,
                "rpo_seconds": evidence.rpo.measured if evidence else None,
                "rpo_unbounded": evidence.rpo.unbounded if evidence else False,
            }
        )
    totals = {
        outcome: sum(1 for e in entries if e.outcome == outcome)
        for outcome in ("passed", "failed", "error", "skipped")
    }
    document: dict[str, Any] = redact_values(
        {
            "schema": INDEX_SCHEMA,
            "run": {
                "id": run.run_id,
                "started_at": run.started_at.isoformat(timespec="seconds"),
                "finished_at": run.finished_at.isoformat(timespec="seconds"),
                "operator": run.operator,
                "host": run.host,
                "environment": run.environment,
                "targets": {"rto_seconds": run.rto_target, "rpo_seconds": run.rpo_target},
                "versions": dict(run.versions),
                "infrastructure": dict(run.infrastructure),
                "lang": run.lang,
            },
            "outputs": outputs,
            "totals": totals,
            "drills": drills,
        }
    )
    return document


def write_json(path: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` atomically as UTF-8 JSON (strict: no NaN or infinity)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    tmp.replace(path)
    return path
