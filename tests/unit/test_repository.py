"""Promises about the repository itself: README commands, CI, layout rules."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)


def test_readme_gives_exactly_two_commands_drills_then_tests():
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("tox -e drills")
    assert "drills" not in commands[1]


def test_ci_runs_the_readme_tests_then_drills_verbatim_as_its_last_steps():
    steps = [
        line
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    drills, tests = readme_commands()
    assert steps[-2:] == [tests, drills]
    assert steps[0] == "set -euo pipefail"


def test_drills_environment_installs_only_the_drill_stack():
    tox = (ROOT / "tox.ini").read_text()
    section = tox.split("[testenv:drills]")[1].split("\n[")[0]
    assert "extras = drills" in section


def test_drills_environment_runs_plain_pytest_drills_which_writes_its_own_report():
    tox = (ROOT / "tox.ini").read_text()
    section = tox.split("[testenv:drills]")[1].split("\n[")[0]
    assert "pytest drills" in section
    # The plugin writes the report, JUnit XML and evidence by itself (docs/reports.md).
    assert "--html" not in section
    assert "--junitxml" not in section


def test_only_the_plugin_imports_pytest():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "harness").rglob("*.py")
        if "pytest_plugin" not in path.parts
        and re.search(r"^\s*(import pytest|from pytest|from _pytest)", path.read_text(), re.M)
    ]
    assert offenders == []


def test_only_proc_starts_subprocesses():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "harness").rglob("*.py")
        if path.name != "proc.py"
        and re.search(r"\bsubprocess\.(run|Popen|call|check_)", path.read_text())
    ]
    assert offenders == []


def test_reports_directory_tracks_only_a_placeholder():
    tracked = subprocess.run(
        ["git", "ls-files", "reports"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked in ([], ["reports/README.md"])


def test_benchmarks_import():
    """Benchmarks are not run by the suite, but they must not rot: each one imports."""
    import importlib.util

    for path in sorted((ROOT / "bench").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert callable(module.main), f"{path.name} has no main()"
