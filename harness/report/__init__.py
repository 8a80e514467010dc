"""Rendering of drill reports: summary, per-drill sections, SVG charts, labels, history.

Free of pytest: it reads evidence records (``docs/drill-evidence.schema.json``) and returns
HTML fragments and JSON documents; the pytest plugin decides when and where they are written.
"""

from harness.report.history import (
    HISTORY_SCHEMA,
    HistoryStore,
    LocalHistory,
    ObjectHistory,
    history_line,
    trends,
)
from harness.report.index import (
    INDEX_SCHEMA,
    new_run_directory,
    point_latest,
    run_index,
    write_json,
)
from harness.report.labels import LANGUAGES, Labels
from harness.report.model import DrillEntry, DrillEvidence, Measure, RunInfo, failure_sentence
from harness.report.summary import render_report

__all__ = [
    "HISTORY_SCHEMA",
    "INDEX_SCHEMA",
    "LANGUAGES",
    "DrillEntry",
    "DrillEvidence",
    "HistoryStore",
    "Labels",
    "LocalHistory",
    "Measure",
    "ObjectHistory",
    "RunInfo",
    "failure_sentence",
    "history_line",
    "new_run_directory",
    "point_latest",
    "render_report",
    "run_index",
    "trends",
    "write_json",
]
