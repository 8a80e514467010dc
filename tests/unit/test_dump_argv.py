"""pg_dump's command line: format, jobs, and the exported snapshot the dump must read."""

from pathlib import Path

import pytest

from harness.pg.binaries import PgBinaries
from harness.pg.dump import pg_dump_argv


@pytest.fixture
def binaries(tmp_path: Path) -> PgBinaries:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "pg_dump").write_text("#!/bin/sh\n")
    return PgBinaries(bindir=bindir, version="17.10", major=17, source="test")


def test_the_exported_snapshot_is_passed_to_pg_dump(binaries, tmp_path):
    argv = pg_dump_argv(binaries, tmp_path / "db.dump", snapshot="00000003-0000001B-1")
    assert "--snapshot=00000003-0000001B-1" in argv


def test_parallel_directory_dump_reads_the_same_snapshot(binaries, tmp_path):
    argv = pg_dump_argv(binaries, tmp_path / "db.dir", fmt="directory", jobs=2, snapshot="X")
    assert "--snapshot=X" in argv
    assert "--jobs=2" in argv
    assert "--format=directory" in argv


def test_without_a_snapshot_pg_dump_takes_its_own(binaries, tmp_path):
    argv = pg_dump_argv(binaries, tmp_path / "db.dump")
    assert not [a for a in argv if a.startswith("--snapshot")]
    assert argv[0] == str(binaries.bindir / "pg_dump")
