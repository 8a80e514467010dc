"""`drill backup`, `drill check` and `drill restore`: output, exit codes, no secrets."""

import pytest
from appdb import load_app, state_of

from harness.cli.main import main


def _dsn(target, dbname="app", password=None):
    return (
        f"postgresql://{target.user}:{password or target.password}@{target.host}:"
        f"{target.port}/{dbname}"
    )


@pytest.fixture
def source(pg_server_factory):
    server = pg_server_factory("source")
    load_app(server)
    return server


def test_backup_check_restore_round_trip(source, pg_server_factory, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRILL_DSN", _dsn(source.target()))
    assert main(["backup", "--to", str(tmp_path / "set")]) == 0
    assert "backup set written to" in capsys.readouterr().out

    assert main(["check", str(tmp_path / "set")]) == 0
    assert capsys.readouterr().out.rstrip().endswith(": good")

    target = pg_server_factory("target")
    monkeypatch.setenv("DRILL_DSN", _dsn(target.target()))
    assert main(["restore", "--from", str(tmp_path / "set"), "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    assert "step post-data" in captured.err  # progress goes to stderr
    assert "restored into" in captured.out
    assert state_of(target)["tables"] == state_of(source)["tables"]
    for secret in (source.target().password, target.target().password):
        assert secret not in captured.out + captured.err


def test_check_of_a_damaged_set_exits_1_naming_the_artifact(source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRILL_DSN", _dsn(source.target()))
    main(["backup", "--to", str(tmp_path / "set")])
    dump = next((tmp_path / "set" / "db").glob("*.dump"))
    dump.write_bytes(dump.read_bytes()[:100])
    capsys.readouterr()
    assert main(["check", str(tmp_path / "set")]) == 1
    out = capsys.readouterr().out
    assert "FAIL artifact db/app.dump" in out
    assert out.rstrip().endswith(": BAD")


@pytest.mark.parametrize(
    ("argv_tail", "message"),
    [(["--dsn", "postgresql://postgres@127.0.0.1:1/app"], "cannot connect"), ([], "not empty")],
    ids=["unreachable", "non-empty-target"],
)
def test_bad_restore_input_exits_2(source, tmp_path, monkeypatch, capsys, argv_tail, message):
    monkeypatch.setenv("DRILL_DSN", _dsn(source.target()))
    main(["backup", "--to", str(tmp_path / "set")])
    capsys.readouterr()
    assert main(["restore", "--from", str(tmp_path / "set"), *argv_tail]) == 2
    assert message in capsys.readouterr().err


def test_wrong_password_exits_2_without_printing_it(source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRILL_DSN", _dsn(source.target(), password="not-the-password-1"))
    assert main(["backup", "--to", str(tmp_path / "set")]) == 2
    err = capsys.readouterr().err
    assert "password was rejected" in err
    assert "not-the-password-1" not in err
    assert not (tmp_path / "set").exists()


def test_missing_set_exits_2(tmp_path, monkeypatch, capsys):
    assert main(["check", str(tmp_path / "nothing-here")]) == 2
    assert "not a (complete) backup set" in capsys.readouterr().err


def test_single_table_restore_from_the_cli(source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRILL_DSN", _dsn(source.target()))
    main(["backup", "--to", str(tmp_path / "set")])
    from harness.pg.sql import connect

    with connect(source.target("app"), autocommit=True) as conn:
        conn.execute(
            "DELETE FROM auth.users WHERE email LIKE 'user5%' AND id NOT IN "
            "(SELECT id FROM public.profiles)"
        )
        conn.execute("TRUNCATE public.page_views")
    capsys.readouterr()
    assert main(["restore", "--from", str(tmp_path / "set"), "--table", "public.page_views"]) == 0
    assert "full restore committed" in capsys.readouterr().out
