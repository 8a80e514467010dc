"""The report's pieces, rendered from real evidence records: labels, charts, sentences, trend."""

import json
import logging
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from harness.config import PROFILES
from harness.drill import run as run_module
from harness.drill.run import DrillRun
from harness.report import (
    DrillEntry,
    DrillEvidence,
    Labels,
    LocalHistory,
    RunInfo,
    failure_sentence,
    history_line,
    render_report,
    trends,
)
from harness.report.labels import missing_translations
from harness.report.model import Measure, duration
from harness.report.svg import ChartRow, sparkline, targets_chart, timeline
from harness.verify.catalog import CatalogFingerprint
from harness.verify.checks import CheckResult
from harness.verify.compare import Comparison, Fingerprint
from harness.verify.data import DataFingerprint, TableDigest


def _fingerprint(rows):
    tables = tuple(TableDigest("public", name, n, f"d{n}", ("id",)) for name, n in rows.items())
    return Fingerprint("17.10", DataFingerprint(tables), CatalogFingerprint(sections={}))


def _run(*, rto_over=False, lose_row=False, test="drills/test_x.py::test_x[logical-custom]"):
    targets = PROFILES["production"]
    run = DrillRun(
        "complete_data_loss", {"fmt": "custom"}, targets, test=test, method="logical-custom"
    )
    with run.phase("seed"):
        pass
    with run.phase("disaster", "data directory deleted"):
        pass
    expected = _fingerprint({"payments": 150, "profiles": 60})
    actual = _fingerprint({"payments": 149 if lose_row else 150, "profiles": 60})
    ok = not lose_row
    detail = "149 rows, reference had 150" if lose_row else "150 rows, content identical"
    checks = (
        CheckResult("data public.payments", ok=ok, critical=True, detail=detail),
        CheckResult(
            "data public.profiles", ok=True, critical=True, detail="60 rows, content identical"
        ),
    )
    run.record_comparison(expected, actual, Comparison(checks, "" if ok else "- data: payments"))
    run.verified()
    if rto_over:
        run.rto_seconds = targets.rto_seconds * 1.25
    now = datetime.now(UTC)
    run.record_rpo(now, now - timedelta(seconds=3))
    return run


def _entry(run, outcome=None):
    evidence = DrillEvidence.from_record(run.evidence())
    return DrillEntry(
        run.test, outcome or ("passed" if run.passed else "failed"), evidence=evidence
    )


def _info(lang="en"):
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    return RunInfo(
        "abc123",
        now,
        now + timedelta(minutes=3),
        "tanaka",
        "ci-1",
        "production",
        14400.0,
        3600.0,
        (("Python", "3.11"),),
        (("provider", "embedded"),),
        lang,
    )


def test_every_label_exists_in_every_language():
    assert missing_translations() == {}


def test_an_unknown_language_is_refused_by_name():
    with pytest.raises(ValueError, match="no report labels for 'fr'; choose one of en, ja"):
        Labels("fr")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (2.71, "2.7 s"),
        (90, "1.5 min"),
        (4 * 3600, "4 h"),
        (7 * 86400, "7 d"),
        (None, "not measured"),
    ],
)
def test_durations_read_naturally(seconds, text):
    assert duration(seconds, Labels()) == text


def test_a_missed_rto_is_said_in_one_sentence_with_both_numbers():
    sentence = failure_sentence(_entry(_run(rto_over=True)), Labels())
    assert sentence == (
        "complete_data_loss [logical-custom] failed: RTO missed its target: "
        "measured 5 h, target 4 h."
    )


def test_a_lost_row_is_said_in_one_sentence_in_japanese_too():
    entry = _entry(_run(lose_row=True))
    assert failure_sentence(entry, Labels()).endswith(
        "failed: data public.payments: 149 rows, reference had 150."
    )
    assert failure_sentence(entry, Labels("ja")) == (
        "complete_data_loss [logical-custom] は不合格: "
        "data public.payments: 149 rows, reference had 150。"
    )


def test_a_drill_that_failed_before_any_evidence_says_why():
    entry = DrillEntry("drills/t.py::test_y", "error", message="ServerStartError: port taken")
    assert failure_sentence(entry, Labels()) == "y failed: ServerStartError: port taken."


def test_record_comparison_keeps_both_sides_of_every_table():
    record = _run(lose_row=True).evidence()
    tables = {t["name"]: t for t in record["tables"]}
    assert tables["public.payments"] == {
        "name": "public.payments",
        "reference_rows": 150,
        "reference_digest": "d150",
        "recovered_rows": 149,
        "recovered_digest": "d149",
        "ok": False,
        "detail": "149 rows, reference had 150",
    }
    assert record["differences"] == ["- data: payments"]


@pytest.mark.parametrize(
    "svg",
    [
        lambda: targets_chart(
            [ChartRow("a", Measure(2.0, 14400), Measure(None, 3600, unbounded=True), "x")],
            Labels(),
        ),
        lambda: timeline(_run().phases, Measure(1.0, 14400), Labels()),
        lambda: sparkline([1.0, None, 3.0], target=2.0, title="RTO"),
    ],
    ids=["targets", "timeline", "sparkline"],
)
def test_charts_are_well_formed_svg_with_a_title(svg):
    root = ET.fromstring(svg())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title").text


def test_the_targets_chart_marks_a_miss_red_and_a_pass_green():
    chart = targets_chart(
        [
            ChartRow("ok", Measure(2.0, 10.0), Measure(1.0, 10.0)),
            ChartRow("late", Measure(20.0, 10.0), Measure(1.0, 10.0)),
        ],
        Labels(),
    )
    bars = [r for r in ET.fromstring(chart).iter("{http://www.w3.org/2000/svg}rect")]
    assert [b.get("fill") for b in bars][:2] == ["#1a7f37", "#cf222e"]


def test_the_report_puts_the_verdict_and_failure_first_and_escapes_what_it_shows():
    bad = _run(lose_row=True, test="drills/test_x.py::test_x[<script>]")
    entries = [_entry(_run()), _entry(bad)]
    html = render_report(
        _info(),
        entries,
        [],
        history_where="reports/history.jsonl",
        labels=Labels(),
        version="0.1.0",
    )
    assert html.index("1 of 2 drills FAILED.") < html.index('id="drill-details"')
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert html.count('<section class="drill ') == 2


def test_history_lines_become_a_trend_per_drill_and_profile(tmp_path):
    history = LocalHistory(tmp_path)
    assert history.read() == []
    for hours, environment in ((0, "production"), (1, "staging"), (2, "production")):
        info = _info()
        info = RunInfo(
            f"r{hours}",
            info.started_at + timedelta(hours=hours),
            info.finished_at,
            "t",
            "h",
            environment,
            1.0,
            1.0,
            (),
            (),
        )
        history.append(history_line(info, [_entry(_run())], "reports/x"))
    (tmp_path / "history.jsonl").open("a").write("not json\n")
    runs = history.read()
    assert len(runs) == 3
    (trend,) = trends(runs, environment="production")
    assert [p.run_id for p in trend.points] == ["r0", "r2"]
    assert trend.title == "complete_data_loss [logical-custom]"


def test_concurrent_appends_lose_no_line(tmp_path):
    history = LocalHistory(tmp_path)
    line = history_line(_info(), [_entry(_run())], "reports/x")
    threads = [
        threading.Thread(target=lambda: [history.append(line) for _ in range(20)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(history.read()) == 80
    for raw in (tmp_path / "history.jsonl").read_text().splitlines():
        json.loads(raw)


def test_evidence_of_another_version_is_refused():
    record = _run().evidence()
    with pytest.raises(ValueError, match="not a drill-evidence/3 record"):
        DrillEvidence.from_record({**record, "schema": "drill-evidence/2"})


def test_a_long_phase_says_it_is_still_running(monkeypatch, caplog):
    monkeypatch.setattr(run_module, "HEARTBEAT", 0.01)
    heard = threading.Event()

    class Ear(logging.Handler):
        def emit(self, record):
            if "still running" in record.getMessage():
                heard.set()

    ear = Ear()
    logging.getLogger("harness.drill.run").addHandler(ear)
    try:
        with caplog.at_level(logging.INFO, logger="harness.drill.run"):
            run = DrillRun("s", {}, PROFILES["production"], method="m")
            with run.phase("restore", "from the object store"):
                assert heard.wait(timeout=30), "no progress line while the phase ran"
    finally:
        logging.getLogger("harness.drill.run").removeHandler(ear)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "s [m]: restore started (from the object store)"
    assert any(m.startswith("s [m]: restore still running after") for m in messages)
    assert messages[-1].startswith("s [m]: restore done after")


def test_secret_named_environment_variables_are_registered_and_others_are_not(monkeypatch):
    from harness import redact as redact_module
    from harness.pytest_plugin.logs import register_environment_secrets
    from harness.redact import SecretRegistry, redact

    monkeypatch.setattr(redact_module, "_registry", SecretRegistry())
    env = {
        "GITHUB_TOKEN": "ghp-token-value-1",
        "PGPASSWORD": "pg-password-value",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "MY_SERVICE_API_KEY": "api-key-value-12",
        "DRILL_SIGNING_KEY": "signing-key-value",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID",
        "GIT_AUTHOR_NAME": "Hanako Yamada",
        "PATH": "/usr/bin",
    }
    names = register_environment_secrets(env)
    assert names == [
        "AWS_SECRET_ACCESS_KEY",
        "DRILL_SIGNING_KEY",
        "GITHUB_TOKEN",
        "MY_SERVICE_API_KEY",
        "PGPASSWORD",
    ]
    text = " ".join(env.values())
    assert redact(text) == (
        "******** ******** ******** ******** ******** AKIAEXAMPLEKEYID Hanako Yamada /usr/bin"
    )
