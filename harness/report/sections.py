"""One HTML section per drill: what was tested, against which targets, with which evidence."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from harness.drill.run import BackupEvidence, TableEvidence
from harness.report.labels import Labels
from harness.report.model import DrillEntry, DrillEvidence, Measure, duration, failure_sentence
from harness.report.svg import timeline
from harness.verify.checks import CheckResult

# Checks whose failures are catalog or RLS differences (shown in their own block).
_DIFFERENCE_PREFIXES = ("catalog", "rls")


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    css: str = "",
    row_classes: Sequence[str] = (),
) -> str:
    """An HTML table; ``header`` is escaped here, cells must already be HTML.

    Args:
        header: column titles (no header row when all are empty).
        rows: the cells of each row, as HTML.
        css: the table's class.
        row_classes: a class for each row, in order (missing or empty: none).

    """
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = ""
    for i, cells in enumerate(rows):
        name = row_classes[i] if i < len(row_classes) else ""
        body += (f'<tr class="{escape(name)}">' if name else "<tr>") + "".join(cells) + "</tr>"
    return f'<table class="{css}">{thead}<tbody>{body}</tbody></table>'


def cell(text: object, css: str = "") -> str:
    """A ``<td>`` holding escaped ``text``."""
    attr = f' class="{css}"' if css else ""
    return f"<td{attr}>{escape(str(text))}</td>"


def badge(outcome: str, labels: Labels) -> str:
    """The PASSED / FAILED / ERROR / SKIPPED badge."""
    return f'<span class="badge badge-{escape(outcome)}">{escape(labels(outcome))}</span>'


def measure_cells(measure: Measure, labels: Labels) -> list[str]:
    """Measured, target, share of target, result."""
    share = measure.share
    return [
        cell(duration(measure.measured, labels, unbounded=measure.unbounded), "num"),
        cell(duration(measure.target, labels), "num"),
        cell(f"{share:.2%}" if share is not None else "", "num"),
        cell(labels("ok") if measure.ok else labels("fail"), "good" if measure.ok else "bad"),
    ]


def drill_section(entry: DrillEntry, labels: Labels) -> str:
    """The full section of one drill."""
    parts = [
        f'<section class="drill drill-{escape(entry.outcome)}" id="{escape(entry.anchor)}">',
        f"<h3>{badge(entry.outcome, labels)} {escape(entry.title)}</h3>",
        f'<p class="test-id"><code>{escape(entry.test)}</code></p>',
    ]
    sentence = failure_sentence(entry, labels)
    if sentence:
        parts.append(f'<p class="failure">{escape(sentence)}</p>')
    evidence = entry.evidence
    if evidence is None:
        if entry.outcome == "skipped":
            parts.append(f'<p class="muted">{escape(entry.message)}</p>')
        else:
            parts.append(f'<p class="muted">{escape(labels("no_evidence"))}</p>')
        if entry.facts:
            rows = [[f"<th>{escape(k)}</th>", cell(v)] for k, v in entry.facts]
            parts.append(f"<h4>{escape(labels('facts'))}</h4>" + table(["", ""], rows, css="kv"))
    else:
        parts += _evidence_parts(entry, evidence, labels)
    parts.append(f'<a class="back" href="#drill-summary">{escape(labels("top"))}</a></section>')
    return "".join(parts)


def _evidence_parts(entry: DrillEntry, evidence: DrillEvidence, labels: Labels) -> list[str]:
    targets = table(
        ["", labels("measured"), labels("target"), labels("headroom"), labels("result")],
        [
            ["<th>RTO</th>", *measure_cells(evidence.rto, labels)],
            ["<th>RPO</th>", *measure_cells(evidence.rpo, labels)],
        ],
    )
    parameters = table(
        ["", ""],
        [[cell(k), f"<td><code>{escape(v)}</code></td>"] for k, v in evidence.parameters],
    )
    parts = [
        '<div class="pair"><div>',
        f"<h4>{escape(labels('targets_vs_measured'))} ({escape(evidence.environment)})</h4>",
        targets,
        f"</div><div><h4>{escape(labels('parameters'))}</h4>",
        parameters if evidence.parameters else "<p class='muted'>-</p>",
        "</div></div>",
        f"<h4>{escape(labels('timeline'))}</h4>",
        timeline(evidence.phases, evidence.rto, labels),
        _phases_table(evidence, labels),
        _checks(evidence.checks, labels),
        _tables(evidence.tables, labels),
        _differences(evidence, labels),
        _backup(evidence.backup, labels),
        _facts(entry, evidence, labels),
    ]
    return parts


def _phases_table(evidence: DrillEvidence, labels: Labels) -> str:
    rows = [
        [
            cell(p.name),
            cell(p.started_at.replace("T", " ")),
            cell(duration(p.seconds, labels), "num"),
            cell(p.detail),
        ]
        for p in evidence.phases
    ]
    body = table([labels("phase"), labels("started"), labels("seconds"), labels("what")], rows)
    return f"<details><summary>{escape(labels('phases'))} ({len(rows)})</summary>{body}</details>"


def _check_row(check: CheckResult, labels: Labels) -> list[str]:
    if check.ok:
        mark, css = labels("ok"), "good"
    elif check.critical:
        mark, css = labels("fail"), "bad"
    else:
        mark, css = labels("warn"), "muted"
    return [cell(check.name), cell(mark, css), cell(check.detail)]


def _checks(checks: Sequence[CheckResult], labels: Labels) -> str:
    failed = [c for c in checks if c.critical and not c.ok]
    passed = sum(1 for c in checks if c.ok or not c.critical)
    summary = labels("checks_passed", ok=passed, n=len(checks))
    header = [labels("check"), labels("result"), labels("detail")]
    # Failed checks first, so that what went wrong is at the top of the table.
    ordered = failed + [c for c in checks if c not in failed]
    body = table(header, (_check_row(c, labels) for c in ordered), css="checks")
    state = " open" if failed else ""
    css = "bad" if failed else "good"
    return (
        f"<h4>{escape(labels('checks'))}</h4><details{state}><summary>"
        f'<span class="{css}">{escape(summary)}</span></summary>{body}</details>'
    )


def _hash(value: str | None, labels: Labels) -> str:
    if value is None:
        return f'<td class="muted">{escape(labels("not_recorded"))}</td>'
    return f'<td class="hash">{escape(value)}</td>'


def _rows(value: int | None, labels: Labels) -> str:
    return cell(labels("not_recorded") if value is None else value, "num")


def _tables(tables: Sequence[TableEvidence], labels: Labels) -> str:
    title = f"<h4>{escape(labels('tables'))}</h4>"
    if not tables:
        return title + f'<p class="muted">{escape(labels("no_tables"))}</p>'
    rows = []
    # Tables that differ first: what went wrong is at the top.
    for t in sorted(tables, key=lambda t: t.ok):
        recovered = _hash(t.recovered_digest, labels)
        if t.recovered_digest is not None and t.recovered_digest == t.reference_digest:
            recovered = f'<td class="good">{escape(labels("same_hash"))}</td>'
        rows.append(
            [
                f"<td><code>{escape(t.name)}</code></td>",
                _rows(t.reference_rows, labels),
                _rows(t.recovered_rows, labels),
                _hash(t.reference_digest, labels),
                recovered,
                cell(labels("ok") if t.ok else labels("fail"), "good" if t.ok else "bad"),
                cell(t.detail),
            ]
        )
    header = [
        labels("table"),
        labels("rows_reference"),
        labels("rows_recovered"),
        labels("hash_reference"),
        labels("hash_recovered"),
        labels("result"),
        labels("detail"),
    ]
    state = " open" if any(not t.ok for t in tables) else ""
    ok = sum(1 for t in tables if t.ok)
    return (
        f"{title}<details{state}><summary>"
        f'<span class="{"good" if ok == len(tables) else "bad"}">'
        f"{escape(labels('tables_identical', ok=ok, n=len(tables)))}</span></summary>"
        f"{table(header, rows, css='tables')}</details>"
    )


def _differences(evidence: DrillEvidence, labels: Labels) -> str:
    title = f"<h4>{escape(labels('differences'))}</h4>"
    failed = [
        c for c in evidence.checks if not c.ok and c.name.lower().startswith(_DIFFERENCE_PREFIXES)
    ]
    if not failed and not evidence.differences:
        return title + f'<p class="good">{escape(labels("no_differences"))}</p>'
    parts = [title]
    if failed:
        parts.append(
            table(
                [labels("check"), labels("result"), labels("detail")],
                (_check_row(c, labels) for c in failed),
            )
        )
    if evidence.differences:
        parts.append(f'<pre class="diff">{escape(chr(10).join(evidence.differences))}</pre>')
    return "".join(parts)


def _backup(backup: BackupEvidence | None, labels: Labels) -> str:
    title = f"<h4>{escape(labels('backup'))}</h4>"
    if backup is None:
        return title + f'<p class="muted">{escape(labels("no_backup"))}</p>'
    facts = table(
        ["", ""],
        [
            [
                f"<th>{escape(labels('location'))}</th>",
                f"<td><code>{escape(backup.location)}</code></td>",
            ],
            [
                f"<th>{escape(labels('manifest_digest'))}</th>",
                f'<td class="hash">{escape(backup.manifest_sha256)}</td>',
            ],
            [
                f"<th>{escape(labels('source_server'))}</th>",
                cell(f"PostgreSQL {backup.source_server_version}"),
            ],
            [
                f"<th>{escape(labels('tools'))}</th>",
                cell(tools_text(backup.tools)),
            ],
        ],
        css="kv",
    )
    artifacts = table(
        [labels("path"), labels("kind"), labels("size"), labels("sha256")],
        (
            [
                f"<td><code>{escape(a.path)}</code></td>",
                cell(a.kind),
                cell(a.size, "num"),
                _hash(a.sha256, labels),
            ]
            for a in backup.artifacts
        ),
    )
    return (
        f"{title}{facts}<details><summary>{escape(labels('artifacts'))} "
        f"({len(backup.artifacts)})</summary>{artifacts}</details>"
    )


# Facts the backup block already shows (run.record_backup writes both).
_BACKUP_FACTS = frozenset({"backup set", "manifest sha256", "source server", "tools", "artifacts"})


def tools_text(tools: dict[str, str]) -> str:
    """``pg_dump 17.10, harness 0.1.0`` (a version that already names its tool is kept whole)."""
    return ", ".join(v if v.startswith(k) else f"{k} {v}" for k, v in sorted(tools.items()))


def _facts(entry: DrillEntry, evidence: DrillEvidence, labels: Labels) -> str:
    shown = _BACKUP_FACTS if evidence.backup is not None else frozenset()
    rows = [[f"<th>{escape(k)}</th>", cell(v)] for k, v in evidence.facts if k not in shown]
    if entry.evidence_file:
        link = escape(entry.evidence_file)
        rows.append(
            [f"<th>{escape(labels('evidence_file'))}</th>", f'<td><a href="{link}">{link}</a></td>']
        )
    return f"<h4>{escape(labels('facts'))}</h4>" + table(["", ""], rows, css="kv")
