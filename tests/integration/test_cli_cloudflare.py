"""``drill d1``, ``drill cf-kv`` and ``drill r2`` on a local wrangler project."""

import pytest

from harness.cli.main import main
from harness.cloudflare import d1
from harness.objects.manifest import list_set_ids, stored_key
from harness.storage.local import LocalObjectStore


@pytest.fixture
def project(cf_project, wrangler_binary, monkeypatch, tmp_path):
    monkeypatch.setenv("DRILL_WRANGLER", str(wrangler_binary))
    cf_project.add_d1("DB", "app-db")
    cf_project.add_spare_d1("app-db-new")
    cf_project.add_kv("SESSIONS")
    cf_project.add_r2("IMAGES", "images")
    w = cf_project.wrangler
    d1.execute(w, "DB", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); "
                        "INSERT INTO t (v) VALUES ('a'), ('b')")  # fmt: skip
    return cf_project


def drill(project, *argv):
    return main([*argv, "--project", str(project.root)])


def test_d1_export_check_and_import_into_a_new_database(project, tmp_path, capsys):
    to = str(tmp_path / "backups")
    assert drill(project, "d1", "export", "DB", "--to", to) == 0
    out = capsys.readouterr().out
    assert out.startswith("set database/")
    assert "DB (1 tables, 2 rows)" in out
    assert drill(project, "d1", "check", "--from", to) == 0
    assert "ok   DB: d1 table t: 2 rows, content equal" in capsys.readouterr().out
    assert drill(project, "d1", "import", "--from", to, "--database", "DB", "--into",
                 "app-db-new") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "point the application's binding at app-db-new" in out
    assert d1.query(project.wrangler, "app-db-new", "SELECT count(*) AS n FROM t") == [{"n": 2}]


def test_d1_check_of_a_corrupted_export_exits_1_naming_the_check(project, tmp_path, capsys):
    to = tmp_path / "backups"
    assert drill(project, "d1", "export", "DB", "--to", str(to)) == 0
    store = LocalObjectStore(to)
    set_id = list_set_ids(store, "database")[0]
    key = stored_key("database", set_id, "DB.sql")
    store.put_bytes(key, store.get_bytes(key)[:-10])
    capsys.readouterr()
    assert drill(project, "d1", "check", "--from", str(to)) == 1
    out = capsys.readouterr().out
    assert "FAIL DB: export sha256" in out
    exported = tmp_path / "plain.sql"
    exported.write_bytes(store.get_bytes(key))
    assert main(["d1", "check", str(exported)]) == 1
    assert "FAIL export loads: SQLite refuses it" in capsys.readouterr().out


def test_kv_and_r2_backup_and_restore(project, tmp_path, capsys):
    w = project.wrangler
    w.run(["kv", "key", "put", "session:1", '{"user_id": "u1"}', "--binding", "SESSIONS",
           w.mode_flag, "--metadata", '{"user_id": "u1"}'])  # fmt: skip
    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8" + bytes(300))
    w.run(["r2", "object", "put", "images/spots/a.jpg", "--file", image, w.mode_flag])
    to = str(tmp_path / "backups")
    assert drill(project, "cf-kv", "backup", "--binding", "SESSIONS", "--to", to) == 0
    assert drill(project, "r2", "backup", "images", "--to", to) == 0
    out = capsys.readouterr().out
    assert "1 keys with 2 wrangler calls" in out
    assert "1 objects, 302 bytes" in out
    w.run(["kv", "key", "delete", "session:1", "--binding", "SESSIONS", w.mode_flag])
    w.run(["r2", "object", "delete", "images/spots/a.jpg", w.mode_flag])
    assert drill(project, "cf-kv", "restore", "--binding", "SESSIONS", "--from", to) == 0
    assert drill(project, "r2", "restore", "images", "--from", to) == 0
    out = capsys.readouterr().out
    assert "ok   kv values: every value and its metadata equal" in out
    assert "1 objects uploaded, 0 unchanged" in out
    assert "ok   r2 sha256" in out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["d1", "export", "DB", "--to", str(tmp_path), "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "wrangler.toml does not exist: run in a wrangler project or pass --config" in err
    assert main(["d1", "check", "--from", str(tmp_path), "--date", "2025-01-01"]) == 2
    assert "backup date '2025-01-01' is not YYYYMMDD" in capsys.readouterr().err
