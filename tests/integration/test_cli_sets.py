"""`drill backup`, `drill check` and `drill restore`: output, exit codes, no secrets."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
from appdb import load_app, state_of

from harness.cli.main import main
from harness.pg.sql import connect, create_database, database_exists
from harness.sets.manifest import MANIFEST, Manifest
from harness.storage.digest import sha256_file


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
    assert "step pg_restore" in captured.err  # progress goes to stderr
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
    with connect(source.target("app"), autocommit=True) as conn:
        conn.execute(
            "DELETE FROM auth.users WHERE email LIKE 'user5%' AND id NOT IN "
            "(SELECT id FROM public.profiles)"
        )
        conn.execute("TRUNCATE public.page_views")
    capsys.readouterr()
    argv = ["restore", "--from", str(tmp_path / "set"), "--table", "public.page_views"]
    # Replacing a live table's rows is destructive: the host must be allow-listed.
    assert main(argv) == 2
    assert "--allow-destructive 127.0.0.1" in capsys.readouterr().err
    assert main([*argv, "--allow-destructive", "127.0.0.1"]) == 0
    assert "full restore committed" in capsys.readouterr().out


# -- safety on servers the harness does not own ------------------------------------------


@pytest.fixture
def small(pg_server_factory, tmp_path, monkeypatch, capsys):
    """A small database with roles, backed up with `drill backup` into tmp_path/set."""
    server = pg_server_factory("small")
    create_database(server.target(), "app")
    with connect(server.target("app"), autocommit=True) as conn:
        conn.execute("CREATE ROLE anon NOLOGIN")
        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 30) g")
        conn.execute("GRANT SELECT ON items TO anon")
    monkeypatch.setenv("DRILL_DSN", _dsn(server.target()))
    assert main(["backup", "--to", str(tmp_path / "set"), "--no-section-sql"]) == 0
    monkeypatch.delenv("DRILL_DSN")
    capsys.readouterr()
    return server


def _rewrite_globals(set_dir, edit):
    """Change globals/roles.json and re-describe it in the manifest (the public API)."""
    path = set_dir / "globals" / "roles.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    manifest_path = set_dir / MANIFEST
    manifest = Manifest.from_json(manifest_path.read_text())
    artifacts = tuple(
        replace(a, sha256=sha256_file(path), size=path.stat().st_size)
        if a.path == "globals/roles.json"
        else a
        for a in manifest.artifacts
    )
    manifest_path.write_text(replace(manifest, artifacts=artifacts).to_json())


def test_a_hostile_roles_snapshot_is_refused_and_nothing_changes(
    small, pg_server_factory, tmp_path, capsys
):
    def inject(data):
        data["roles"][0]["attributes"][0] = "LOGIN; DROP DATABASE precious"

    _rewrite_globals(tmp_path / "set", inject)
    target = pg_server_factory("target")
    create_database(target.target(), "precious")
    roles_before = _role_names(target)
    code = main(["restore", "--from", str(tmp_path / "set"), "--dsn", _dsn(target.target())])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "roles.json is not a valid roles snapshot" in err
    assert "'LOGIN; DROP DATABASE precious'" in err
    assert "nothing was restored" in err
    assert "Traceback" not in err
    assert database_exists(target.target(), "precious")
    assert not database_exists(target.target(), "app")
    assert _role_names(target) == roles_before


def test_an_existing_database_needs_the_cli_allow_list_option(
    small, pg_server_factory, tmp_path, capsys, monkeypatch
):
    target = pg_server_factory("target")
    create_database(target.target(), "app")  # empty
    argv = ["restore", "--from", str(tmp_path / "set"), "--dsn", _dsn(target.target())]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "replace database app (it is empty)" in err
    assert "pass --allow-destructive 127.0.0.1 (or set DRILL_ALLOW_DESTRUCTIVE=127.0.0.1)" in err
    assert "--drill-allow-destructive" not in err
    assert "step roles" not in err, "refused before any work"

    monkeypatch.setenv("DRILL_ALLOW_DESTRUCTIVE", "backups.invalid, 127.0.0.1")
    assert main(argv) == 0
    with connect(target.target("app")) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 30


def test_allow_destructive_option_names_hosts(small, pg_server_factory, tmp_path, capsys):
    target = pg_server_factory("target")
    create_database(target.target(), "app")
    argv = ["restore", "--from", str(tmp_path / "set"), "--dsn", _dsn(target.target())]
    assert main([*argv, "--allow-destructive", "other-host"]) == 2
    assert main([*argv, "--allow-destructive", "other-host,127.0.0.1"]) == 0
    assert "restored into" in capsys.readouterr().out


def _restricted_role(target, name, attributes):
    with connect(target.target(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'pw-{name}-77' {attributes}")
    t = target.target()
    return f"postgresql://{name}:pw-{name}-77@{t.host}:{t.port}/app"


def test_a_role_without_createdb_gets_a_clear_error_not_a_traceback(
    small, pg_server_factory, tmp_path, capsys
):
    target = pg_server_factory("target")
    dsn = _restricted_role(target, "restorer", "NOCREATEDB")
    assert main(["restore", "--from", str(tmp_path / "set"), "--dsn", dsn]) == 1
    err = capsys.readouterr().err
    assert "create database: role 'restorer' may not create databases" in err
    assert "CREATEDB" in err
    assert "Traceback" not in err
    assert "pw-restorer-77" not in err
    assert err.count("drill: error:") == 1


def test_a_role_that_cannot_create_roles_fails_cleanly_and_leaves_nothing(
    small, pg_server_factory, tmp_path, capsys
):
    target = pg_server_factory("target")
    dsn = _restricted_role(target, "restorer", "CREATEDB NOCREATEROLE")
    assert main(["restore", "--from", str(tmp_path / "set"), "--dsn", dsn]) == 1
    err = capsys.readouterr().err
    assert "roles: converging roles failed, no role was changed" in err
    assert "permission denied to create role" in err
    assert "Traceback" not in err
    with connect(target.target()) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'app%'").fetchall()
    assert left == []


def test_database_errors_outside_the_restore_are_one_line_and_debug_adds_the_traceback(
    small, capsys
):
    with connect(small.target("app"), autocommit=True) as conn:
        conn.execute("REVOKE ALL ON items FROM PUBLIC")
    dsn = _restricted_role(small, "peeker", "")
    assert main(["fingerprint", "--dsn", dsn]) == 1
    err = capsys.readouterr().err
    assert err.startswith("drill: error: ")
    assert "permission denied" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert main(["--debug", "fingerprint", "--dsn", dsn]) == 1
    assert "Traceback" in capsys.readouterr().err


# -- --workdir ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["backup", "check", "restore"])
def test_workdir_must_exist_and_be_a_directory(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRILL_DSN", "postgresql://postgres@127.0.0.1:1/app")
    argv = {
        "backup": ["backup", "--to", str(tmp_path / "set")],
        "check": ["check", str(tmp_path / "set")],
        "restore": ["restore", "--from", str(tmp_path / "set")],
    }[command]
    assert main([*argv, "--workdir", str(tmp_path / "missing")]) == 2
    assert f"--workdir {tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert main([*argv, "--workdir", str(tmp_path / "a-file")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_backup_and_restore_stage_in_the_workdir(small, pg_server_factory, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    target = pg_server_factory("target")
    argv = ["--workdir", str(work), "--dsn", _dsn(target.target())]
    assert main(["restore", "--from", str(tmp_path / "set"), *argv]) == 0
    assert main(["check", str(tmp_path / "set"), "--workdir", str(work)]) == 0
    assert main(["backup", "--to", str(tmp_path / "set2"), *argv]) == 0
    assert list(work.iterdir()) == [], "scratch space is cleaned up"
    assert "backup set written to" in capsys.readouterr().out


def test_a_local_backup_refuses_a_workdir_on_another_filesystem(small, tmp_path, capsys):
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    argv = ["backup", "--dsn", _dsn(small.target()), "--to", str(tmp_path / "set2")]
    assert main([*argv, "--workdir", str(other)]) == 2
    assert "is on another filesystem" in capsys.readouterr().err
    assert not (tmp_path / "set2").exists()


def _role_names(server):
    with connect(server.target()) as conn:
        return {r[0] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()}
