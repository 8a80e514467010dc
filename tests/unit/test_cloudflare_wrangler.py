"""Finding and running wrangler: the pinned copy, Node, JSON output, the token kept secret."""

import os
import sys

import pytest

from harness.cloudflare.targets import CLOUDFLARE_PROFILES, cloudflare_targets
from harness.cloudflare.wrangler import (
    INSTALL_HINT,
    TOKEN_ENV,
    Wrangler,
    find_wrangler,
    node_problem,
    parse_json,
)
from harness.config import HOUR, PROFILES, RecoveryTargets
from harness.errors import ConfigError, ToolError, ToolFailed, ToolNotFound
from harness.redact import MASK

TOKEN = "cf-token-0123456789abcdefSECRET"


def script(path, body):
    path.write_text(f"#!{sys.executable}\nimport os, sys\n{body}\n")
    path.chmod(0o755)
    return path


def test_json_is_found_between_wrangler_banners():
    text = (
        " ⛅️ wrangler 4.40.0\n──────\n▲ [WARNING] open-beta command\n"
        '{\n  "k": {"value": "a\\nb"}\n}\n\nSuccess!\n'
    )
    assert parse_json(text, what="kv bulk get") == {"k": {"value": "a\nb"}}
    assert parse_json('[{"results": []}]', what="d1 execute") == [{"results": []}]


def test_output_without_json_is_a_tool_error_quoting_its_tail():
    with pytest.raises(ToolError, match=r"wrangler d1 execute printed no JSON: .*no such table"):
        parse_json("banner\n✘ [ERROR] no such table: t\n{not json", what="d1 execute")


def test_drill_wrangler_names_the_executable(tmp_path):
    fake = script(tmp_path / "wrangler", "print('4.40.0')")
    assert find_wrangler(environ={"DRILL_WRANGLER": str(fake)}) == fake
    with pytest.raises(ToolNotFound, match=r"DRILL_WRANGLER=.* is not an executable file"):
        find_wrangler(environ={"DRILL_WRANGLER": str(tmp_path / "missing")})


def test_the_pinned_copy_is_found_from_any_directory_below_the_repository(tmp_path):
    binary = tmp_path / "cloudflare" / "node_modules" / ".bin" / "wrangler"
    binary.parent.mkdir(parents=True)
    script(binary, "print('4.40.0')")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_wrangler([deep], environ={}) == binary


def test_the_install_hint_names_the_command_and_the_version():
    assert "npm ci --prefix cloudflare" in INSTALL_HINT
    assert "4.40.0" in INSTALL_HINT


def test_a_machine_without_node_is_told_what_to_install():
    problem = node_problem(lambda name: None)
    assert problem is not None
    assert "Node.js is not installed (no `node` on PATH)" in problem
    assert "npm ci --prefix cloudflare" in problem


def test_an_old_node_is_refused_naming_its_version(tmp_path):
    old = script(tmp_path / "node", "print('v18.19.0')")
    problem = node_problem(lambda name: str(old))
    assert problem is not None
    assert "Node.js v18.19.0 is too old" in problem
    new = script(tmp_path / "node20", "print('v20.20.2')")
    assert node_problem(lambda name: str(new)) is None


def test_remote_mode_needs_the_token_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    remote = Wrangler(tmp_path / "wrangler", tmp_path, remote=True)
    with pytest.raises(ConfigError, match="--remote needs an API token in CLOUDFLARE_API_TOKEN"):
        remote.env()
    assert Wrangler(tmp_path / "wrangler", tmp_path).env()["WRANGLER_SEND_METRICS"] == "false"


def test_the_token_never_reaches_argv_or_an_error_message(tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    # A stand-in for wrangler that fails loudly, printing the token it was given.
    fake = script(
        tmp_path / "wrangler",
        f"sys.stderr.write('auth failed for ' + os.environ['{TOKEN_ENV}'] + ' ' + "
        "' '.join(sys.argv[1:]) + '\\n'); sys.exit(1)",
    )
    w = Wrangler(fake, tmp_path, remote=True)
    assert TOKEN not in " ".join(map(str, w.command(["d1", "export", "db", w.mode_flag])))
    assert TOKEN not in w.env().values()
    with pytest.raises(ToolFailed) as failed:
        w.run(["d1", "export", "db", w.mode_flag])
    assert TOKEN not in str(failed.value)
    assert f"auth failed for {MASK} d1 export db --remote" in str(failed.value)


def test_wrangler_runs_in_the_project_with_its_config(tmp_path):
    fake = script(tmp_path / "wrangler", "print(os.getcwd(), ' '.join(sys.argv[1:]))")
    project = tmp_path / "p"
    project.mkdir()
    w = Wrangler(fake, project, config=project / "other.toml")
    out = w.run(["kv", "key", "list", w.mode_flag]).stdout.strip()
    assert out == f"{project} kv key list --local --config {project / 'other.toml'}"
    assert (project / ".wrangler").is_dir()
    assert os.environ.get("WRANGLER_SEND_METRICS") != "true"


def test_the_stack_uses_the_guides_targets_unless_the_user_set_others():
    production = cloudflare_targets(PROFILES["production"])
    assert production == RecoveryTargets("production", 4 * HOUR, 24 * HOUR)
    assert cloudflare_targets(PROFILES["staging"]) == CLOUDFLARE_PROFILES["staging"]
    assert cloudflare_targets(PROFILES["development"]).rpo_seconds == 7 * 24 * HOUR
    custom = RecoveryTargets("production", 4 * HOUR, 2 * HOUR)  # --drill-rpo=2h
    assert cloudflare_targets(custom) is custom
    other = RecoveryTargets("qa", HOUR, HOUR)
    assert cloudflare_targets(other) is other
