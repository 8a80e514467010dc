"""The history of drill runs: one JSON line per run, appended, read back for trends.

A quarterly review asks whether recovery got slower. Each run appends one line
(``drill-history/1``, ``docs/drill-history.schema.json``) to ``history.jsonl`` in a directory
(``reports/`` by default) or under an S3 prefix the team names (``s3://bucket/prefix``), and
the report draws every drill's RTO and RPO across the runs found there.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.errors import ObjectNotFound
from harness.redact import get_logger, redact_values
from harness.report.model import DrillEntry, RunInfo
from harness.storage.base import ObjectStore

HISTORY_SCHEMA = "drill-history/1"
HISTORY_FILE = "history.jsonl"

log = get_logger(__name__)


class HistoryStore(Protocol):
    """Where the history lives."""

    @property
    def where(self) -> str:
        """A printable description of the place."""
        ...

    def read(self) -> list[dict[str, Any]]:
        """Every run recorded so far, oldest first."""
        ...

    def append(self, line: dict[str, Any]) -> None:
        """Record one more run."""
        ...


def _parse(text: str, where: str) -> list[dict[str, Any]]:
    runs, skipped = [], 0
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            skipped += 1
            continue
        if isinstance(line, dict) and line.get("schema") == HISTORY_SCHEMA:
            runs.append(line)
        else:
            skipped += 1
    if skipped:
        log.warning("%s: skipped %d lines that are not %s records", where, skipped, HISTORY_SCHEMA)
    return runs


def _dump(line: dict[str, Any]) -> str:
    return json.dumps(redact_values(line), ensure_ascii=False, allow_nan=False) + "\n"


class LocalHistory:
    """``history.jsonl`` in a local directory; appends are serialised with a file lock."""

    def __init__(self, directory: Path) -> None:
        """Keep the history in ``directory`` (made on first append)."""
        self.path = directory / HISTORY_FILE

    @property
    def where(self) -> str:
        """The file's path."""
        return str(self.path)

    def read(self) -> list[dict[str, Any]]:
        """Every recorded run (none when the file does not exist yet)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return _parse(text, self.where)

    def append(self, line: dict[str, Any]) -> None:
        """Append one line under an exclusive lock (two sessions may finish at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.write(_dump(line))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class ObjectHistory:
    """``history.jsonl`` under a prefix of an object store (read, extend, write back).

    Object stores have no append; two runs finishing in the same second could lose one
    line, which costs one point of a trend, never evidence (each run keeps its own files).
    """

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        """Keep the history at ``prefix/history.jsonl`` in ``store``."""
        self.store = store
        self.key = f"{prefix.strip('/')}/{HISTORY_FILE}".lstrip("/")

    @property
    def where(self) -> str:
        """The object's location."""
        return f"{self.store.location}/{self.key}"

    def _text(self) -> str:
        try:
            return self.store.get_bytes(self.key).decode("utf-8")
        except ObjectNotFound:
            return ""

    def read(self) -> list[dict[str, Any]]:
        """Every recorded run."""
        return _parse(self._text(), self.where)

    def append(self, line: dict[str, Any]) -> None:
        """Write the history back with one more line."""
        self.store.put_bytes(self.key, (self._text() + _dump(line)).encode("utf-8"))


def history_line(run: RunInfo, entries: Sequence[DrillEntry], report: str) -> dict[str, Any]:
    """The line recording one run: when, where its report is, each drill's RTO and RPO."""
    drills = []
    for entry in entries:
        evidence = entry.evidence
        drills.append(
            {
                "test": entry.test,
                "title": entry.title,
                "outcome": entry.outcome,
                "rto_seconds": evidence.rto.measured if evidence else None,
                "rpo_seconds": evidence.rpo.measured if evidence else None,
                "rpo_unbounded": evidence.rpo.unbounded if evidence else False,
                "rto_target": evidence.rto.target if evidence else run.rto_target,
                "rpo_target": evidence.rpo.target if evidence else run.rpo_target,
            }
        )
    return {
        "schema": HISTORY_SCHEMA,
        "run_id": run.run_id,
        "started_at": run.started_at.isoformat(timespec="seconds"),
        "environment": run.environment,
        "operator": run.operator,
        "report": report,
        "drills": drills,
    }


@dataclass(frozen=True)
class TrendPoint:
    """One drill's measurements in one run."""

    run_id: str
    started_at: str
    outcome: str
    rto: float | None
    rpo: float | None
    rpo_unbounded: bool
    rto_target: float
    rpo_target: float


@dataclass(frozen=True)
class Trend:
    """One drill across runs, oldest first."""

    test: str
    title: str
    points: tuple[TrendPoint, ...]


def trends(runs: Sequence[dict[str, Any]], *, environment: str | None = None) -> list[Trend]:
    """Every drill's points across ``runs`` (of one environment profile when given).

    Runs of different profiles are held to different targets; mixing them would draw a
    staging run next to a production one.
    """
    by_test: dict[str, list[TrendPoint]] = {}
    titles: dict[str, str] = {}
    ordered = sorted(runs, key=lambda r: str(r.get("started_at", "")))
    for run in ordered:
        if environment is not None and run.get("environment") != environment:
            continue
        for drill in run.get("drills", []):
            try:
                point = TrendPoint(
                    run_id=str(run["run_id"]),
                    started_at=str(run["started_at"]),
                    outcome=str(drill["outcome"]),
                    rto=_number(drill.get("rto_seconds")),
                    rpo=_number(drill.get("rpo_seconds")),
                    rpo_unbounded=bool(drill.get("rpo_unbounded", False)),
                    rto_target=float(drill["rto_target"]),
                    rpo_target=float(drill["rpo_target"]),
                )
            except (KeyError, TypeError, ValueError):
                continue  # a line written by hand or by a future version: not a point
            test = str(drill["test"])
            by_test.setdefault(test, []).append(point)
            titles[test] = str(drill.get("title") or test)
    return [Trend(test, titles[test], tuple(points)) for test, points in by_test.items()]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
