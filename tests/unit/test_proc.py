import sys

import pytest

from harness.errors import ToolFailed, ToolNotFound, ToolTimeout
from harness.proc import run
from harness.redact import register_secret

PY = sys.executable


def test_run_captures_output_and_status():
    result = run([PY, "-c", "print('hi'); import sys; sys.exit(0)"], timeout=30)
    assert result.stdout.strip() == "hi"
    assert result.returncode == 0


def test_failure_carries_status_and_redacted_stderr_tail():
    register_secret("proc-secret-9876")
    script = "import sys; print('boom proc-secret-9876', file=sys.stderr); sys.exit(3)"
    with pytest.raises(ToolFailed) as info:
        run([PY, "-c", script], timeout=30)
    assert info.value.returncode == 3
    assert "boom" in info.value.stderr_tail
    assert "proc-secret-9876" not in str(info.value)


def test_unchecked_failure_returns_the_status():
    assert run([PY, "-c", "raise SystemExit(4)"], timeout=30, check=False).returncode == 4


def test_missing_executable_is_tool_not_found():
    with pytest.raises(ToolNotFound, match="no-such-tool-xyz"):
        run(["no-such-tool-xyz"], timeout=5)


def test_timeout_kills_and_says_so():
    with pytest.raises(ToolTimeout, match=r"did not finish within 0\.3 s"):
        run([PY, "-c", "import time; time.sleep(30)"], timeout=0.3)


def test_inherited_libpq_variables_are_dropped_and_overrides_kept(monkeypatch):
    monkeypatch.setenv("PGHOST", "production-db.example")
    monkeypatch.setenv("PGPASSWORD", "from-the-shell")
    script = "import os; print(os.environ.get('PGHOST'), os.environ.get('PGPASSWORD'))"
    out = run([PY, "-c", script], timeout=30, env={"PGHOST": "127.0.0.1"}).stdout.split()
    assert out == ["127.0.0.1", "None"]
