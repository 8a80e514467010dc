"""What each drill adds to the reports, and the HTML report's hooks.

Drills record facts through the ``drill_record`` fixture into ``item.stash``; a
``pytest_runtest_makereport`` wrapper merges them into the report (the pytest-html pattern):
user properties (JUnit and the HTML columns Scenario, Method, RTO, RPO, Integrity) and, for
pytest-html, one line saying what failed with a link to the drill's section. The same
wrapper masks secrets in every report (tracebacks, captured output) before anything prints
or writes it. The HTML-only hooks are registered only when pytest-html is installed.
"""

from __future__ import annotations

import html
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from harness.drill.run import DrillRun
from harness.infra.providers.base import Fact
from harness.pytest_plugin.options import RUN_DIR
from harness.redact import redact
from harness.report import DrillEntry, DrillEvidence, Labels, failure_sentence
from harness.report.model import duration

OUTCOMES = pytest.StashKey[dict[str, bool]]()
"""Per phase (setup, call, teardown): True unless it failed (a skip is not a failure)."""
SKIPPED = pytest.StashKey[bool]()
"""Set when the drill's body was skipped (it did not run to its end)."""
RECORD = pytest.StashKey["DrillRecord"]()
SESSION_FACTS = pytest.StashKey[list[Fact]]()
LABELS = pytest.StashKey[Labels]()
COLUMNS = ("scenario", "method", "RTO", "RPO", "integrity")
"""User properties shown as columns of the HTML results table."""


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


def redact_report(report: pytest.TestReport) -> None:
    """Mask secrets in a report's traceback, captured output and properties, in place.

    Every output (terminal, JUnit, HTML, xdist's controller) reads the report, so masking it
    here covers all of them, whatever raised or printed the secret.
    """
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        report.longrepr = (longrepr[0], longrepr[1], redact(str(longrepr[2])))
    elif longrepr is not None:
        text = report.longreprtext
        masked = redact(text)
        if masked != text:
            report.longrepr = masked
    report.sections = [(title, redact(content)) for title, content in report.sections]
    report.user_properties = [
        (redact(str(key)), redact(str(value))) for key, value in report.user_properties
    ]


def _columns(evidence: DrillEvidence, labels: Labels) -> list[Fact]:
    ok, total = evidence.integrity()
    rpo = evidence.rpo
    return [
        Fact("scenario", evidence.scenario),
        Fact("method", evidence.method),
        Fact("RTO", duration(evidence.rto.measured, labels)),
        Fact("RPO", duration(rpo.measured, labels, unbounded=rpo.unbounded)),
        Fact("integrity", f"{ok}/{total}"),
    ]


def _row_html(entry: DrillEntry, labels: Labels) -> str:
    sentence = failure_sentence(entry, labels)
    link = f'<a href="#{html.escape(entry.anchor)}">{html.escape(labels("see_details"))}</a>'
    if sentence:
        return (
            f'<p class="drill-row-failure" style="color:#a40e26;font-weight:600">'
            f"{html.escape(sentence)} {link}</p>"
        )
    return f"<p>{link}</p>"


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
        _describe(item, report, record)
    if report.when == "call" and record is not None and record.facts:
        _properties(item, report, record.facts)
    redact_report(report)
    return report


def _properties(item: pytest.Item, report: pytest.TestReport, facts: list[Fact]) -> None:
    """Add facts to this report and to the item's properties.

    JUnit XML writes the properties of a test's last (teardown) report, which pytest copies
    from the item; the HTML columns read this call report.
    """
    pairs = [(f.label, f.value) for f in facts]
    report.user_properties.extend(pairs)
    item.user_properties.extend(pairs)


def _describe(item: pytest.Item, report: pytest.TestReport, record: DrillRecord) -> None:
    """Add the columns and, for pytest-html, the one-line verdict with its link."""
    labels = item.config.stash.get(LABELS, Labels())
    evidence = None
    if record.run is not None:
        evidence = DrillEvidence.from_record(record.run.evidence())
        _properties(item, report, _columns(evidence, labels))
    if item.config.pluginmanager.hasplugin("html"):
        from pytest_html import extras

        if RUN_DIR not in item.config.stash:  # no drill sections to link to
            report.extras = [  # type: ignore[attr-defined]
                *getattr(report, "extras", []),
                extras.html(facts_table(record.facts, title="Drill facts")),
            ]
            return
        entry = DrillEntry(
            test=report.nodeid,
            outcome="failed" if report.failed else "passed",
            message=_first_line(report),
            evidence=evidence,
        )
        report.extras = [  # type: ignore[attr-defined]
            *getattr(report, "extras", []),
            extras.html(_row_html(entry, labels)),
            extras.html(facts_table(record.facts, title="Drill facts")),
        ]


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return redact(str(getattr(crash, "message", "") or "").split("\n", 1)[0])


class SummarySource(Protocol):
    """Where the HTML summary comes from (the controller's report session)."""

    html: str


class HtmlHooks:
    """pytest-html hooks: the title, the drills' summary, and the extra result columns."""

    def __init__(self, config: pytest.Config, labels: Labels) -> None:
        """Bind to the session's config."""
        self.config = config
        self.labels = labels

    def _summary(self) -> SummarySource | None:
        plugin = self.config.pluginmanager.get_plugin("drill-report")
        return plugin if plugin is not None and hasattr(plugin, "html") else None

    def pytest_html_report_title(self, report: Any) -> None:
        """Name the report for what it is."""
        report.title = self.labels("title")

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str]
    ) -> None:
        """Put the drills' summary and sections first; else the infrastructure alone."""
        source = self._summary()
        if source is not None and source.html:
            prefix.insert(0, source.html)
            return
        facts = self.config.stash.get(SESSION_FACTS, [])
        if facts:
            prefix.append(facts_table(facts, title="Infrastructure"))

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        """Add Scenario, Method, RTO, RPO and Integrity columns after the test id."""
        names = [self.labels(c) if c in ("scenario", "method", "integrity") else c for c in COLUMNS]
        cells[2:2] = [
            f'<th class="sortable" data-column-type="{c.lower()}">{html.escape(n)}</th>'
            for c, n in zip(COLUMNS, names, strict=True)
        ]

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        """Fill the new columns from the drill's recorded properties."""
        props = {str(k): str(v) for k, v in report.user_properties if str(k) in COLUMNS}
        cells[2:2] = [
            f'<td class="col-{c.lower()}">{html.escape(props.get(c, ""))}</td>' for c in COLUMNS
        ]
