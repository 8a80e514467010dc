"""``drill basebackup`` and ``drill pitr`` end to end against a real server."""

from harness.cli.main import main
from harness.infra.pg_server import ThrowawayServer
from harness.pg.sql import connect
from harness.sets.wal_receive import StreamingArchiver, switch_wal
from harness.storage.local import LocalObjectStore


def test_basebackup_then_pitr_to_a_restore_point(default_template, tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    store = LocalObjectStore(repo)
    with ThrowawayServer(default_template, workdir=tmp_path / "primary") as primary:
        archiver = StreamingArchiver(
            primary.target(), primary.binaries, store, spool=tmp_path / "spool"
        ).start()
        try:
            with connect(primary.target(), autocommit=True) as conn:
                conn.execute("CREATE TABLE t (v int)")
            monkeypatch.setenv("DRILL_DSN", primary.target().conninfo())
            assert main(["basebackup", "--to", f"{repo}/base/b1"]) == 0
            with connect(primary.target(), autocommit=True) as conn:
                conn.execute("INSERT INTO t VALUES (1)")
                conn.execute("SELECT pg_create_restore_point('p')")
                conn.execute("INSERT INTO t VALUES (2)")
            switch_wal(primary.target())
        finally:
            archiver.stop(timeout=30)
    out = tmp_path / "out"
    code = main(
        [
            "pitr",
            "--from",
            f"{repo}/base/b1",
            "--to",
            "name:p",
            "--datadir",
            str(out),
            "--action",
            "promote",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "timeline 2" in printed.out
    assert (out / "server" / "data" / "PG_VERSION").exists()


def test_pitr_refuses_a_time_without_offset(tmp_path, capsys):
    code = main(["pitr", "--from", f"{tmp_path}/base/b1", "--to", "2026-01-01 10:00:00"])
    assert code == 2
    assert "no UTC offset" in capsys.readouterr().err


def test_pitr_refuses_a_location_that_names_no_set(tmp_path, capsys):
    code = main(["pitr", "--from", str(tmp_path), "--to", "latest"])
    assert code == 2
    assert "does not name a physical set" in capsys.readouterr().err


def test_pitr_refuses_a_timeline_that_is_no_timeline(tmp_path, capsys):
    code = main(["pitr", "--from", f"{tmp_path}/base/b1", "--to", "latest", "--timeline", "newest"])
    assert code == 2
    assert "not 'current', 'latest' or a timeline number" in capsys.readouterr().err
