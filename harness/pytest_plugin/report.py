"""What each drill adds to the HTML report, and the report's summary of the infrastructure.

Drills record facts through the ``drill_record`` fixture into ``item.stash``; a
``pytest_runtest_makereport`` wrapper merges them into the report's extras (the pytest-html
pattern). The HTML-only hooks are registered only when pytest-html is installed and active.
"""

from __future__ import annotations

import html
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.drill.run import DrillRun
from harness.infra.providers.base import Fact
from harness.redact import redact

OUTCOMES = pytest.StashKey[dict[str, bool]]()
"""Per phase (setup, call, teardown): True unless it failed (a skip is not a failure)."""
SKIPPED = pytest.StashKey[bool]()
"""Set when the drill's body was skipped (it did not run to its end)."""
RECORD = pytest.StashKey["DrillRecord"]()
SESSION_FACTS = pytest.StashKey[list[Fact]]()


@dataclass
class DrillRecord:
    """Facts and measurements one drill wants in the report (values are redacted)."""

    facts: list[Fact] = field(default_factory=list)
    run: DrillRun | None = None
    evidence: Path | None = None

    def summarise_run(self) -> None:
        """Add the drill run's RTO, RPO, phases and checks as facts."""
        run = self.run
        if run is None:
            return
        verdict = run.verdict()
        self.add("RTO", _seconds(run.rto_seconds))
        self.add("RPO", _seconds(run.rpo_seconds))
        self.add(
            "targets",
            f"{run.targets.environment}: RTO {run.targets.rto_seconds / 3600:g} h"
            f", RPO {run.targets.rpo_seconds / 3600:g} h",
        )
        for label, value in run.facts.items():
            self.add(label, value)
        for phase in run.phases:
            self.add(f"phase {phase.name}", f"{phase.seconds:.2f} s {phase.detail}".strip())
        failed = [c for c in verdict if not c.ok]
        self.add(
            "checks",
            f"{len(verdict) - len(failed)} of {len(verdict)} passed"
            + "".join(f"; FAILED {c.name}: {c.detail}" for c in failed),
        )
        if self.evidence is not None:
            self.add("evidence", str(self.evidence))

    def add(self, label: str, value: object) -> None:
        """Record ``label: value`` for this drill's report entry."""
        self.facts.append(Fact(label, redact(str(value))))


def _seconds(value: float | None) -> str:
    if value is None:
        return "not measured"
    return "unbounded" if value == float("inf") else f"{value:.2f} s"


def facts_table(facts: list[Fact], *, title: str) -> str:
    """Render facts as a small HTML table (escaped)."""
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(f.label)}</th>"
        f"<td>{html.escape(f.value)}</td></tr>"
        for f in facts
    )
    return f"<div class='drill-facts'><h4>{html.escape(title)}</h4><table>{rows}</table></div>"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's outcome (for keep=failed, evidence) and attach the drill's facts."""
    report = yield
    item.stash.setdefault(OUTCOMES, {})[report.when] = not report.failed
    if report.skipped and report.when in ("setup", "call"):
        item.stash[SKIPPED] = True
    record = item.stash.get(RECORD, None)
    if report.when == "call" and record is not None and not report.skipped:
        record.summarise_run()
    if report.when == "call" and record is not None and record.facts:
        report.user_properties.extend((f.label, f.value) for f in record.facts)
        if item.config.pluginmanager.hasplugin("html"):
            from pytest_html import extras

            report.extras = [  # type: ignore[attr-defined]
                *getattr(report, "extras", []),
                extras.html(facts_table(record.facts, title="Drill facts")),
            ]
    return report


class HtmlHooks:
    """pytest-html hooks: a column for the PostgreSQL version, a summary of infrastructure."""

    def __init__(self, config: pytest.Config) -> None:
        """Bind to the session's config."""
        self.config = config

    def pytest_html_report_title(self, report: Any) -> None:
        """Name the report for what it is."""
        report.title = "Recovery drill report"

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str]
    ) -> None:
        """Add the infrastructure every drill ran on."""
        facts = self.config.stash.get(SESSION_FACTS, [])
        if facts:
            prefix.append(facts_table(facts, title="Infrastructure"))

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        """Add PostgreSQL, RTO and RPO columns."""
        cells[2:2] = ["<th>PostgreSQL</th>", "<th>RTO</th>", "<th>RPO</th>"]

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        """Fill the new columns from the drill's recorded facts."""
        props = [(str(k), str(v)) for k, v in report.user_properties]
        versions = sorted({v for k, v in props if k == "PostgreSQL"})
        rto = next((v for k, v in props if k == "RTO"), "")
        rpo = next((v for k, v in props if k == "RPO"), "")
        cells[2:2] = [
            f"<td>{html.escape(', '.join(versions))}</td>",
            f"<td>{html.escape(rto)}</td>",
            f"<td>{html.escape(rpo)}</td>",
        ]
