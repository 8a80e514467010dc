"""The backup-set commands run without the drill stack; errors speak the CLI's spelling."""

import subprocess
import sys

import pytest

from harness.errors import OptionHint, RestoreError, UnsafeTargetError
from harness.pg.sql import require_destructive

HEAVY = ("pytest", "moto", "testcontainers", "httpx", "psutil", "harness.infra")


def _python(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["backup", "--help"],
        ["check", "/nonexistent/set"],
        ["restore", "--from", "/nonexistent/set", "--dsn", "postgresql://u@127.0.0.1:1/app"],
        ["backup", "--to", "/nonexistent/new", "--dsn", "postgresql://u@127.0.0.1:1/app"],
    ],
    ids=["help", "backup-help", "check", "restore", "backup"],
)
def test_backup_set_commands_never_import_the_drill_stack(argv):
    result = _python(
        "import sys\n"
        "from harness.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_doctor_without_the_drill_stack_says_what_to_install():
    # A None entry in sys.modules makes that import fail, as an uninstalled package does.
    result = _python(
        "import sys\n"
        "sys.modules['httpx'] = None\n"
        "from harness.cli.main import main\n"
        "sys.exit(main(['doctor']))\n"
    )
    assert result.returncode == 1
    assert (
        "drill doctor needs the drill stack: pip install 'recovery-drill-harness[drills]'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_an_option_hint_is_spelled_for_each_front_end():
    hint = OptionHint("allow_destructive", "db.internal")
    assert hint.render("pytest") == (
        "pass --drill-allow-destructive=db.internal (or set DRILL_ALLOW_DESTRUCTIVE=db.internal)"
    )
    assert hint.render("drill") == (
        "pass --allow-destructive db.internal (or set DRILL_ALLOW_DESTRUCTIVE=db.internal)"
    )


def test_a_refusal_carries_the_hint_and_renders_it_per_caller():
    from harness.config import PgTarget

    target = PgTarget.from_dsn("postgresql://app:pw-1234@prod-db.invalid:1/shop")
    with pytest.raises(UnsafeTargetError) as info:
        require_destructive(target, "replace database shop")
    assert info.value.hint == OptionHint("allow_destructive", "prod-db.invalid")
    assert "--drill-allow-destructive=prod-db.invalid" in str(info.value)
    cli = info.value.render("drill")
    assert "--allow-destructive prod-db.invalid" in cli
    assert "--drill-" not in cli
    assert "pw-1234" not in cli


def test_phased_errors_keep_their_phase_with_a_hint():
    error = RestoreError("x", phase="target", hint=OptionHint("pg_bindir", "/opt/pg/bin"))
    assert error.phase == "target"
    assert error.render("drill") == (
        "target: x; pass --pg-bindir /opt/pg/bin (or set DRILL_PG_BINDIR=/opt/pg/bin)"
    )
