"""Real drills, one deliberately failing, rendered in headless Chromium: what a reader sees.

The session is a plain `pytest drills` of two end-to-end drills (``inner.REAL_DRILLS``) on
embedded PostgreSQL and moto; the second loses a restored row, so the report must show the
failure on its first screen and every key section must be displayed.
"""

import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest
from browser import CHROMIUM, MISSING, screenshot, visible
from inner import REAL_DRILLS, SCHEMAS, drills_project, run_pytest

PASSING = "drills/test_drills.py::test_complete_data_loss[logical-custom]"
FAILING = "drills/test_drills.py::test_restore_loses_a_row[logical-custom]"
ANCHOR = "#drill-drills-test_drills-py-test_restore_loses_a_row-logical-custom"
SECTION_OK = "#drill-drills-test_drills-py-test_complete_data_loss-logical-custom"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    project = drills_project(tmp_path_factory.mktemp("real"), REAL_DRILLS)
    # A previous quarter's run of the same drills, so the trend has two points.
    earlier = {
        "schema": "drill-history/1",
        "run_id": "q3run",
        "started_at": "2026-08-20T09:00:00+09:00",
        "environment": "production",
        "operator": "drill team",
        "report": "reports/20260820T000000Z",
        "drills": [
            {
                "test": test,
                "title": title,
                "outcome": "passed",
                "rto_seconds": 2.0,
                "rpo_seconds": 1.0,
                "rpo_unbounded": False,
                "rto_target": 14400.0,
                "rpo_target": 3600.0,
            }
            for test, title in (
                (PASSING, "complete_data_loss [logical-custom]"),
                (FAILING, "restore_loses_a_row [logical-custom]"),
            )
        ],
    }
    (project / "reports").mkdir()
    (project / "reports" / "history.jsonl").write_text(json.dumps(earlier) + "\n")
    code, output = run_pytest(project, "drills", env={"DRILL_S3": "moto"})
    assert code == 1, output
    report = project / "reports" / "latest" / "report.html"
    assert report.is_file(), output
    return project, report, output


def test_both_drills_ran_one_failed_on_the_lost_row(real_run):
    project, _, output = real_run
    index = json.loads((project / "reports" / "latest" / "index.json").read_text())
    outcomes = {d["test"]: d["outcome"] for d in index["drills"]}
    assert outcomes == {PASSING: "passed", FAILING: "failed"}, output
    validator = jsonschema.Draft202012Validator(
        SCHEMAS["drill-evidence"], format_checker=jsonschema.FormatChecker()
    )
    for drill in index["drills"]:
        record = json.loads((project / "reports" / "latest" / drill["evidence"]).read_text())
        validator.validate(record)
        # Both sides of every table are recorded: rows and content hashes.
        assert record["tables"], drill["test"]
        assert all(t["recovered_digest"] for t in record["tables"] if t["recovered_rows"])
        assert record["backup"]["manifest_sha256"]
        assert len(record["backup"]["artifacts"]) > 3
    failing = next(d for d in index["drills"] if d["test"] == FAILING)
    record = json.loads((project / "reports" / "latest" / failing["evidence"]).read_text())
    payments = next(t for t in record["tables"] if t["name"] == "public.payments")
    assert payments["ok"] is False
    assert payments["recovered_rows"] == payments["reference_rows"] - 1


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_the_failure_is_on_the_first_screen(real_run):
    _, report, _ = real_run
    seen = visible(report, ["#drill-verdict", f'ul.failures a[href="{ANCHOR}"]', "#title"])
    height = seen["viewport"]["height"]
    verdict = seen["elements"]["#drill-verdict"]
    assert verdict["shown"]
    assert verdict["bottom"] <= height
    assert "1 of 2 drills FAILED" in verdict["text"]
    failure = seen["elements"][f'ul.failures a[href="{ANCHOR}"]']
    assert failure["shown"]
    assert failure["bottom"] <= height, "the failure sentence is below the first screen"
    assert failure["text"].startswith("restore_loses_a_row [logical-custom] failed: data public.")
    assert "public.payments: 149 rows, reference had 150" in failure["text"]


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_every_key_section_is_displayed(real_run):
    _, report, _ = real_run
    selectors = {
        "#drill-run": "Environment profile",
        "table.drills": "complete_data_loss",
        "#drill-chart svg": "",
        "#drill-trend": "Trend across runs",
        "table.trend": "restore_loses_a_row [logical-custom]",
        f"{SECTION_OK} svg.timeline": "",
        f"{SECTION_OK} h3": "PASSED",
        f"{ANCHOR} p.failure": "public.payments",
        f"{ANCHOR} table.tables": "public.payments",
        f"{ANCHOR} table.checks": "FAIL",
        f"{SECTION_OK} table.kv": "Manifest SHA-256",
        "#results-table": "restore_loses_a_row",
        "#results-table th[data-column-type='integrity']": "Integrity",
    }
    seen = visible(report, list(selectors))["elements"]
    for selector, text in selectors.items():
        element = seen[selector]
        assert element is not None, f"{selector} is not in the page"
        assert element["shown"], f"{selector} is not displayed"
        assert text in element["text"], f"{selector} does not say {text!r}"


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_screenshot_of_the_failing_report(real_run, tmp_path):
    _, report, _ = real_run
    png = screenshot(report, tmp_path / "report-failed.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    where = os.environ.get("DRILL_REPORT_SCREENSHOTS")
    if where:  # keep it for a person to look at
        shutil.copy(png, Path(where) / "report-failed.png")
