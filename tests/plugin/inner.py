"""Drill sessions the plugin tests run as separate pytest processes, and what they check.

``REAL_DRILLS`` are two end-to-end drills on real servers (complete data loss restored from
the object store); the second one deliberately fails: a row of the restored database is
deleted before verification, as a broken restore would lose it. ``QUICK_DRILLS`` time phases
and measure RTO/RPO without servers, for tests of the report's plumbing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = {
    name: json.loads((ROOT / "docs" / f"{name}.schema.json").read_text())
    for name in ("drill-evidence", "drill-run-index", "drill-history")
}

REAL_DRILLS = """
import pytest

from harness import connect, detect, disasters, parse_location, restore_set, scenario

pytestmark = pytest.mark.drill
METHODS = [pytest.param({"fmt": "custom", "jobs": 1}, id="logical-custom")]


def _drill(pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method, *,
           sabotage):
    source = pg_server_factory("source")
    app = scenario.seed(drill_run, source, lesson_app)
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    before, rls_before = scenario.before_disaster(app)
    with scenario.live_writes(drill_run, app) as writes:
        backup = scenario.back_up(drill_run, app, location, writes=writes, **method)
        with drill_run.phase("disaster", "server stopped, data directory deleted mid-write"):
            disasters.destroy_server(source)
        with drill_run.phase("detect"):
            scenario.writes_failing(drill_run, writes)
            drill_run.add([detect(before, app).check])
    with drill_run.phase("restore", "new server, latest set from the object store"):
        new = pg_server_factory("replacement").target("app")
        restored = restore_set(location, new, workdir=drill_workdir, jobs=method["jobs"])
    if sabotage:
        with connect(new) as conn:
            conn.execute(
                "DELETE FROM public.payments WHERE id = (SELECT min(id) FROM public.payments)"
            )
    scenario.verify_replacement(drill_run, new, backup, restored.checks, rls_before)
    scenario.record_rpo(drill_run, writes, new)
    assert drill_run.passed, drill_run.failures()


@pytest.mark.parametrize("method", METHODS)
def test_complete_data_loss(pg_server_factory, object_store, lesson_app, drill_run,
                            drill_workdir, method):
    _drill(pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method,
           sabotage=False)


@pytest.mark.parametrize("method", METHODS)
def test_restore_loses_a_row(pg_server_factory, object_store, lesson_app, drill_run,
                             drill_workdir, method):
    _drill(pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method,
           sabotage=True)
"""

QUICK_DRILLS = """
from datetime import UTC, datetime, timedelta

import pytest

from harness import CheckResult

pytestmark = pytest.mark.drill


def _run(drill_run, ok=True):
    with drill_run.phase("seed"):
        pass
    with drill_run.phase("disaster", "table dropped"):
        pass
    with drill_run.phase("verify"):
        drill_run.add([CheckResult("data public.items", ok=ok, critical=True,
                                   detail="3 rows, content identical" if ok else "2 rows, "
                                   "reference had 3")])
        drill_run.verified()
    now = datetime.now(UTC)
    drill_run.record_rpo(now, now - timedelta(seconds=2))


@pytest.mark.parametrize("method", [pytest.param("x", id="logical-custom")])
def test_quick_restore(drill_run, method):
    _run(drill_run)
    assert drill_run.passed, drill_run.failures()


def test_quick_broken_restore(drill_run):
    _run(drill_run, ok=False)
    assert drill_run.passed, drill_run.failures()
"""


def run_pytest(cwd, *args, env=None, timeout=900):
    """Run ``python -m pytest`` in ``cwd`` as a user would; return (returncode, output)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DRILL_", "PYTEST_"))}
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def drills_project(directory, drills, *, name="test_drills.py"):
    """A project with a ``drills/`` directory (and the data set the drills load)."""
    (directory / "drills").mkdir(parents=True, exist_ok=True)
    (directory / "drills" / name).write_text(drills)
    fixtures = directory / "fixtures"
    if not fixtures.exists():
        fixtures.symlink_to(ROOT / "fixtures", target_is_directory=True)
    (directory / "pytest.ini").write_text("[pytest]\n")
    return directory
