"""The top of the report: the verdict, the run, every drill at a glance, charts, the trend.

The first screen answers an auditor's questions: did every drill pass, against which
targets, how far were RTO and RPO from them, who ran it when and with what; and, for a
failed drill, one sentence saying what failed with a link to its section.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from harness.report.history import Trend
from harness.report.labels import Labels
from harness.report.model import DrillEntry, RunInfo, duration, failure_sentence
from harness.report.sections import badge, cell, drill_section, table
from harness.report.style import CSS
from harness.report.svg import ChartRow, sparkline, targets_chart


def render_report(
    run: RunInfo,
    entries: Sequence[DrillEntry],
    trend: Sequence[Trend],
    *,
    history_where: str,
    labels: Labels,
    version: str,
) -> str:
    """The report's own part of the page: summary, charts, trend, one section per drill.

    Args:
        run: the session.
        entries: every drill of the session, in the order they ran.
        trend: the drills across the runs in the history (this one included).
        history_where: where the history is kept (shown with the trend).
        labels: the report's language.
        version: the harness version that wrote the report.

    """
    details = [drill_section(e, labels) for e in entries]
    return (
        f"<style>{CSS}</style>"
        f'<div class="drill-report" lang="{escape(labels.lang)}">'
        f'<section id="drill-summary">{_verdict(entries, labels)}{_run_facts(run, labels)}'
        f"{_drills_table(entries, labels)}{_chart(entries, labels)}"
        f"{_trend(entries, trend, history_where, labels)}</section>"
        f'<section id="drill-details"><h2>{escape(labels("details"))}</h2>{"".join(details)}'
        f'<p class="muted">{escape(labels("generated", when=_when(run), version=version))}</p>'
        f"</section></div>"
    )


def _when(run: RunInfo) -> str:
    return run.finished_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _verdict(entries: Sequence[DrillEntry], labels: Labels) -> str:
    ran = [e for e in entries if e.outcome != "skipped"]
    bad = [e for e in entries if e.outcome in ("failed", "error")]
    skipped = len(entries) - len(ran)
    if not ran:
        css, text = "verdict-none", labels("verdict_none")
    elif bad:
        css, text = "verdict-fail", labels("verdict_failed", failed=len(bad), n=len(ran))
    else:
        css, text = "verdict-pass", labels("verdict_all_passed", n=len(ran))
    if skipped:
        text += " " + labels("verdict_skipped", n=skipped)
    items = "".join(
        f'<li><a href="#{escape(e.anchor)}">{escape(failure_sentence(e, labels))}</a></li>'
        for e in bad
    )
    failures = f'<ul class="failures">{items}</ul>' if items else ""
    return f'<div class="verdict {css}" id="drill-verdict">{escape(text)}</div>{failures}'


def _run_facts(run: RunInfo, labels: Labels) -> str:
    seconds = (run.finished_at - run.started_at).total_seconds()
    left = [
        (
            labels("environment_profile"),
            f"{run.environment}: RTO {duration(run.rto_target, labels)}, "
            f"RPO {duration(run.rpo_target, labels)}",
        ),
        (labels("date"), run.started_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()),
        (labels("duration"), duration(seconds, labels)),
        (labels("operator"), run.operator),
        (labels("host"), run.host),
        (labels("run_id"), run.run_id),
    ]

    def kv(title: str, pairs: Sequence[tuple[str, str]]) -> str:
        rows = [[f"<th>{escape(k)}</th>", cell(v)] for k, v in pairs]
        return f"<div><h4>{escape(title)}</h4>{table(['', ''], rows, css='kv')}</div>"

    return (
        f'<div class="run-facts" id="drill-run">{kv(labels("run"), left)}'
        f"{kv(labels('versions'), run.versions)}"
        f"{kv(labels('infrastructure'), run.infrastructure) if run.infrastructure else ''}</div>"
    )


def _drills_table(entries: Sequence[DrillEntry], labels: Labels) -> str:
    rows = []
    for e in entries:
        ev = e.evidence
        if ev is not None:
            ok, total = ev.integrity()
            integrity = f"{ok}/{total}"
            rto = f"{duration(ev.rto.measured, labels)} / {duration(ev.rto.target, labels)}"
            rpo = (
                f"{duration(ev.rpo.measured, labels, unbounded=ev.rpo.unbounded)}"
                f" / {duration(ev.rpo.target, labels)}"
            )
            rto_css = "num good" if ev.rto.ok else "num bad"
            rpo_css = "num good" if ev.rpo.ok else "num bad"
            int_css = "num good" if ok == total else "num bad"
        else:
            integrity = rto = rpo = "-"
            rto_css = rpo_css = int_css = "num muted"
        rows.append(
            [
                f'<td><a href="#{escape(e.anchor)}">{escape(e.scenario)}</a></td>',
                cell(e.variant or "-"),
                f"<td>{badge(e.outcome, labels)}</td>",
                cell(rto, rto_css),
                cell(rpo, rpo_css),
                cell(integrity, int_css),
            ]
        )
    header = [
        labels("scenario"),
        labels("variant"),
        labels("result"),
        f"RTO ({labels('measured')} / {labels('target')})",
        f"RPO ({labels('measured')} / {labels('target')})",
        labels("integrity"),
    ]
    classes = [f"row-{e.outcome}" for e in entries]
    body = table(header, rows, css="drills", row_classes=classes)
    return f"<h2>{escape(labels('drills_heading'))}</h2>{body}"


def _chart(entries: Sequence[DrillEntry], labels: Labels) -> str:
    rows = [
        ChartRow(label=e.title, rto=e.evidence.rto, rpo=e.evidence.rpo, anchor=e.anchor)
        for e in entries
        if e.evidence is not None
    ]
    if not rows:
        return ""
    return (
        f'<figure class="chart-box" id="drill-chart">{targets_chart(rows, labels)}'
        f"<figcaption>{escape(labels('chart_title'))}</figcaption></figure>"
    )


def _change(
    previous: float | None, latest: float | None, target: float, labels: Labels
) -> tuple[str, str]:
    """The change from the previous run; red only when it is slower by a share that matters.

    Seconds of noise on a target of hours are not a regression: a change is marked only when
    it is at least 20 % and at least 1 % of the target.
    """
    if previous is None or latest is None or previous <= 0:
        return "-", "muted"
    ratio = latest / previous - 1
    if abs(ratio) < 0.05:
        return labels("unchanged"), "muted"
    word = labels("slower") if ratio > 0 else labels("faster")
    matters = abs(ratio) >= 0.2 and abs(latest - previous) >= 0.01 * target
    css = ("bad" if ratio > 0 else "good") if matters else "muted"
    return f"{ratio:+.0%} ({word})", css


def _trend(
    entries: Sequence[DrillEntry], trend: Sequence[Trend], where: str, labels: Labels
) -> str:
    title = f'<h2 id="drill-trend">{escape(labels("trend_title"))}</h2>'
    wanted = {e.test for e in entries}
    trend = [t for t in trend if t.test in wanted]
    runs = max((len(t.points) for t in trend), default=0)
    source = f'<p class="muted">{escape(labels("trend_source", where=where, n=runs))}</p>'
    if runs <= 1:
        return title + f'<p class="muted">{escape(labels("trend_none"))}</p>' + source
    rows = []
    for t in trend:
        last, prev = t.points[-1], (t.points[-2] if len(t.points) > 1 else None)
        rto_change, rto_css = _change(prev.rto if prev else None, last.rto, last.rto_target, labels)
        rpo_change, rpo_css = _change(prev.rpo if prev else None, last.rpo, last.rpo_target, labels)
        rows.append(
            [
                cell(t.title),
                cell(len(t.points), "num"),
                "<td>"
                + sparkline(
                    [p.rto for p in t.points], target=last.rto_target, title=f"RTO {t.title}"
                )
                + "</td>",
                cell(duration(last.rto, labels), "num"),
                cell(rto_change, rto_css),
                "<td>"
                + sparkline(
                    [p.rpo for p in t.points], target=last.rpo_target, title=f"RPO {t.title}"
                )
                + "</td>",
                cell(duration(last.rpo, labels, unbounded=last.rpo_unbounded), "num"),
                cell(rpo_change, rpo_css),
            ]
        )
    header = [
        labels("drill"),
        labels("runs"),
        "RTO",
        labels("latest"),
        labels("change"),
        "RPO",
        labels("latest"),
        labels("change"),
    ]
    return title + table(header, rows, css="trend") + source
