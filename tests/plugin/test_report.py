"""`pytest drills` writes its report, JUnit XML, evidence and index by itself, in real sessions.

These sessions time phases without servers (``inner.QUICK_DRILLS``): they test where the
outputs go and what they hold; tests/plugin/test_report_browser.py renders real drills.
"""

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest
from inner import QUICK_DRILLS, SCHEMAS, drills_project, run_pytest


def _validator(name):
    return jsonschema.Draft202012Validator(SCHEMAS[name], format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `pytest drills` with no report flags: one drill passes, one fails."""
    project = drills_project(tmp_path_factory.mktemp("quick"), QUICK_DRILLS)
    code, output = run_pytest(project, "drills", "-p", "no:cacheprovider")
    return project, code, output


def test_pytest_drills_without_flags_writes_every_output_under_reports_latest(quick_run):
    project, code, output = quick_run
    assert code == 1, output
    latest = project / "reports" / "latest"
    assert latest.is_symlink()
    run_dir = latest.resolve()
    assert run_dir.parent == (project / "reports").resolve()
    for name in ("report.html", "junit.xml", "drills.log", "index.json"):
        assert (latest / name).is_file(), name
    assert str(run_dir) in output


def test_the_index_lists_every_drill_and_validates(quick_run):
    project, _, _ = quick_run
    latest = project / "reports" / "latest"
    index = json.loads((latest / "index.json").read_text())
    _validator("drill-run-index").validate(index)
    assert index["totals"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 0}
    assert index["outputs"] == {"html": "report.html", "junit": "junit.xml", "log": "drills.log"}
    by_test = {d["test"].rsplit("::", 1)[1]: d for d in index["drills"]}
    broken = by_test["test_quick_broken_restore"]
    assert broken["outcome"] == "failed"
    assert "2 rows, reference had 3" in broken["message"]
    assert by_test["test_quick_restore[logical-custom]"]["method"] == "logical-custom"
    for drill in index["drills"]:
        record = json.loads((latest / drill["evidence"]).read_text())
        _validator("drill-evidence").validate(record)
        assert record["test"] == drill["test"]


def test_junit_xml_has_every_drill_with_its_columns(quick_run):
    project, _, _ = quick_run
    tree = ET.parse(project / "reports" / "latest" / "junit.xml")
    cases = {c.get("name"): c for c in tree.iter("testcase")}
    assert set(cases) == {"test_quick_restore[logical-custom]", "test_quick_broken_restore"}
    assert cases["test_quick_broken_restore"].find("failure") is not None
    props = {
        p.get("name"): p.get("value")
        for p in cases["test_quick_restore[logical-custom]"].iter("property")
    }
    assert props["scenario"] == "quick_restore"
    assert props["method"] == "logical-custom"
    assert props["integrity"] == "1/1"


def test_the_html_says_what_failed_first_and_links_to_its_section(quick_run):
    project, _, _ = quick_run
    html = (project / "reports" / "latest" / "report.html").read_text()
    verdict = html.index('id="drill-verdict"')
    assert "1 of 2 drills FAILED." in html[verdict : verdict + 200]
    sentence = "quick_broken_restore failed: data public.items: 2 rows, reference had 3."
    assert sentence in html
    anchor = "drill-drills-test_drills-py-test_quick_broken_restore"
    assert f'href="#{anchor}"' in html
    assert f'id="{anchor}"' in html
    # The summary comes before the sections, which come before pytest-html's table.
    assert html.index('id="drill-summary"') < html.index('id="drill-details"')
    assert html.index('id="drill-details"') < html.index('id="results-table"')
    for column in ("Scenario", "Variant", "RTO", "RPO", "Integrity"):
        assert f">{column}</th>" in html


def test_history_gets_a_line_per_run_and_the_second_run_shows_a_trend(quick_run):
    project, _, _ = quick_run
    code, output = run_pytest(project, "drills", "-p", "no:cacheprovider")
    assert code == 1, output
    lines = (project / "reports" / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        _validator("drill-history").validate(json.loads(line))
    html = (project / "reports" / "latest" / "report.html").read_text()
    trend = html[html.index('id="drill-trend"') :]
    assert '<table class="trend">' in trend
    assert "(2 runs)" in trend


def test_report_off_writes_no_report_only_the_evidence(tmp_path):
    project = drills_project(tmp_path, QUICK_DRILLS)
    code, output = run_pytest(project, "drills", "-p", "no:cacheprovider", "--drill-report=off")
    assert code == 1, output
    # The evidence goes where --drill-evidence-dir says (default reports/evidence); no run
    # directory, report, JUnit XML or history.
    assert sorted(p.name for p in (project / "reports").iterdir()) == ["evidence"]
    assert "recovery drill outputs" not in output


def test_tests_outside_drills_get_no_report(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x():\n    assert True\n")
    code, output = run_pytest(tmp_path, "tests", "-p", "no:cacheprovider")
    assert code == 0, output
    assert not (tmp_path / "reports").exists()


def test_paths_the_user_gives_win(tmp_path):
    project = drills_project(tmp_path, QUICK_DRILLS)
    code, output = run_pytest(
        project,
        "drills",
        "-p",
        "no:cacheprovider",
        "--html=mine.html",
        "--junitxml=mine.xml",
        "--drill-report-dir=out",
        "--drill-history=hist",
        "--drill-operator=Tanaka (DR team)",
    )
    assert code == 1, output
    assert (project / "mine.html").is_file()
    assert (project / "mine.xml").is_file()
    assert (project / "hist" / "history.jsonl").is_file()
    index = json.loads((project / "out" / "latest" / "index.json").read_text())
    assert index["outputs"]["html"] == str(project / "mine.html")
    assert index["run"]["operator"] == "Tanaka (DR team)"
    assert "Tanaka (DR team)" in (project / "mine.html").read_text()


def test_japanese_labels(tmp_path):
    project = drills_project(tmp_path, QUICK_DRILLS)
    code, output = run_pytest(project, "drills", "-p", "no:cacheprovider", "--drill-lang=ja")
    assert code == 1, output
    html = (project / "reports" / "latest" / "report.html").read_text(encoding="utf-8")
    assert "<title" in html
    assert "復旧訓練レポート" in html
    assert "2 件中 1 件の訓練が不合格です。" in html
    assert "quick_broken_restore は不合格: data public.items: 2 rows, reference had 3。" in html
    assert 'lang="ja"' in html
    index = json.loads((project / "reports" / "latest" / "index.json").read_text())
    assert index["run"]["lang"] == "ja"


def test_an_unknown_language_is_a_usage_error(tmp_path):
    project = drills_project(tmp_path, QUICK_DRILLS)
    code, output = run_pytest(project, "drills", "-p", "no:cacheprovider", "--drill-lang=fr")
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "invalid choice: 'fr'" in output


def test_live_log_shows_phase_progress_but_not_every_info_line(quick_run):
    _, _, output = quick_run
    assert "quick_restore [logical-custom]: seed started" in output
    assert "quick_broken_restore: verify done after" in output
    assert "live log call" in output


def test_under_xdist_workers_write_evidence_and_the_controller_assembles_the_report(tmp_path):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    provider_drill = (
        "\n\ndef test_on_the_provider(drill_provider, drill_run):\n    _run(drill_run)\n"
    )
    project = drills_project(tmp_path, QUICK_DRILLS + provider_drill)
    code, output = run_pytest(
        project, "drills", "-p", "no:cacheprovider", "-n", "2", env={"DRILL_S3": "moto"}
    )
    assert code == 1, output
    latest = project / "reports" / "latest"
    index = json.loads((latest / "index.json").read_text())
    assert index["totals"] == {"passed": 2, "failed": 1, "error": 0, "skipped": 0}
    assert all((latest / d["evidence"]).is_file() for d in index["drills"])
    assert {p.name for p in latest.glob("drills-gw*.log")} == {"drills-gw0.log", "drills-gw1.log"}
    # The worker that used the provider left its facts; the controller put them in the index.
    assert index["run"]["infrastructure"]["provider"].startswith("embedded")
    html = (latest / "report.html").read_text()
    assert "1 of 3 drills FAILED." in html
    assert html.count('<section class="drill ') == 3
    assert len((project / "reports" / "history.jsonl").read_text().splitlines()) == 1
    # Workers finish drills in any order; the report lists them as they were collected.
    assert [d["test"].rsplit("::", 1)[1] for d in index["drills"]] == [
        "test_quick_restore[logical-custom]",
        "test_quick_broken_restore",
        "test_on_the_provider",
    ]
    # A fact each worker has its own value of (its S3 server) is one line naming both.
    infrastructure = index["run"]["infrastructure"]
    assert len(infrastructure) == len(set(infrastructure))
    if "S3" in infrastructure and ";" in infrastructure["S3"]:
        assert "(gw0)" in infrastructure["S3"] or "(gw1)" in infrastructure["S3"]


STACKED = """
import pytest

METHODS = [pytest.param({"fmt": "custom"}, id="logical-custom"),
           pytest.param({"fmt": "directory"}, id="logical-directory")]


@pytest.mark.parametrize("mistake", ["delete", "truncate"], ids=["delete", "truncate"])
@pytest.mark.parametrize("method", METHODS)
def test_stacked(drill_run, method, mistake):
    pass


@pytest.mark.parametrize(("mistake", "by"), [("delete", "time")])
def test_no_method(drill_run, mistake, by):
    pass
"""


def test_the_method_is_the_method_parameters_id_even_under_stacked_marks(tmp_path):
    project = drills_project(tmp_path, STACKED)
    code, output = run_pytest(project, "drills", "-p", "no:cacheprovider")
    assert code == 0, output
    evidence = project / "reports" / "latest" / "evidence"
    methods = {
        record["test"].rsplit("::", 1)[1]: record["method"]
        for record in (json.loads(p.read_text()) for p in evidence.glob("*.json"))
    }
    assert methods == {
        "test_stacked[logical-custom-delete]": "logical-custom",
        "test_stacked[logical-custom-truncate]": "logical-custom",
        "test_stacked[logical-directory-delete]": "logical-directory",
        "test_stacked[logical-directory-truncate]": "logical-directory",
        "test_no_method[delete-time]": "delete-time",
    }
    # The report tells the four apart: one method each for two drills, but four variants.
    html = (project / "reports" / "latest" / "report.html").read_text()
    table = html[html.index('id="drill-summary"') : html.index('id="drill-details"')]
    for variant in ("logical-custom-delete", "logical-custom-truncate", "logical-directory-delete"):
        assert f">{variant}</td>" in table
