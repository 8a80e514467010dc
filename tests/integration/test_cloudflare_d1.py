"""D1 through the real wrangler in local mode: export, checks, restore into a fresh database."""

import pytest

from harness.cloudflare import d1
from harness.errors import RestoreError, ToolFailed
from harness.objects.manifest import manifest_key, stored_key
from harness.storage.local import LocalObjectStore

SEED = """
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id TEXT REFERENCES users(id), body TEXT,
  score REAL, raw BLOB);
CREATE VIEW note_count AS SELECT user_id, count(*) AS n FROM notes GROUP BY user_id;
CREATE TRIGGER notes_trim AFTER INSERT ON notes BEGIN SELECT 1; END;
INSERT INTO users VALUES ('u1', 'O''Brien'), ('u2', 'Sōta');
INSERT INTO notes (user_id, body, score, raw) VALUES ('u1', 'line1
line2', 0.1, x'00ff10'), ('u2', NULL, -2.5e-7, NULL), ('u2', '😀', 3, x'');
"""


@pytest.fixture
def app(cf_project, tmp_path):
    cf_project.add_d1("DB", "app-db")
    seed = tmp_path / "seed.sql"
    seed.write_text(SEED, encoding="utf-8")
    d1.import_sql(cf_project.wrangler, "DB", seed)
    return cf_project


@pytest.fixture
def store(tmp_path):
    return LocalObjectStore(tmp_path / "backups")


def test_a_backup_restores_into_a_fresh_database_with_every_value(app, store, tmp_path):
    w = app.wrangler
    backup = d1.back_up(w, ["DB"], store, workdir=tmp_path / "w1")
    reference = backup.fingerprints["DB"]
    assert {t.name: t.rows for t in reference.tables} == {"users": 2, "notes": 3}
    assert {o.type for o in reference.schema} == {"table", "view", "trigger"}
    assert backup.manifest.extra["tool"] == "wrangler 4.40.0"

    fresh = app.add_spare_d1("app-db-restored")
    restored = d1.restore(w, store, backup.manifest.set_id, "DB", into=fresh.name,
                          workdir=tmp_path / "w2")  # fmt: skip
    assert restored.ok, restored.checks
    assert restored.fingerprint == reference
    rows = d1.query(w, fresh.name, "SELECT body, hex(raw) AS raw FROM notes ORDER BY id")
    assert rows[0] == {"body": "line1\nline2", "raw": "00FF10"}


def test_checking_a_set_does_not_touch_the_source_and_passes(app, store, tmp_path):
    w = app.wrangler
    backup = d1.back_up(w, ["DB"], store, workdir=tmp_path / "w1")
    d1.execute(w, "DB", "DROP TABLE notes")  # the source changes; the set does not
    result = d1.check_backup(store, backup.manifest.set_id, workdir=tmp_path / "w2")["DB"]
    assert result.ok, result.failures()


def test_a_damaged_export_in_the_store_is_refused_before_any_import(app, store, tmp_path):
    w = app.wrangler
    backup = d1.back_up(w, ["DB"], store, workdir=tmp_path / "w1")
    set_id = backup.manifest.set_id
    key = stored_key("database", set_id, "DB.sql")
    store.put_bytes(key, store.get_bytes(key).replace(b"O''Brien", b"O''Brian"))
    check = d1.check_backup(store, set_id, workdir=tmp_path / "w2")["DB"]
    assert "export sha256" in check.failures()
    assert "d1 table users: 2 rows as expected but their content differs" in check.failures()
    fresh = app.add_spare_d1("app-db-restored")
    with pytest.raises(RestoreError, match=r"verify-artifact: DB.sql in set database/\d+"):
        d1.restore(w, store, set_id, "DB", into=fresh.name, workdir=tmp_path / "w3")
    assert d1.user_objects(w, fresh.name) == []


def test_a_truncated_export_in_the_store_fails_its_check(app, store, tmp_path):
    w = app.wrangler
    backup = d1.back_up(w, ["DB"], store, workdir=tmp_path / "w1")
    set_id = backup.manifest.set_id
    key = stored_key("database", set_id, "DB.sql")
    text = store.get_bytes(key).decode()
    store.put_bytes(key, text.rsplit("\n", 1)[0].encode())  # the last statement is gone
    check = d1.check_backup(store, set_id, workdir=tmp_path / "w2")["DB"]
    assert not check.ok
    assert "export sha256" in check.failures()
    assert manifest_key("database", set_id) in {o.key for o in store.list("backups/")}


def test_a_restore_never_writes_into_a_database_that_holds_anything(app, store, tmp_path):
    w = app.wrangler
    backup = d1.back_up(w, ["DB"], store, workdir=tmp_path / "w1")
    with pytest.raises(RestoreError, match=r"target: app-db is not empty .*restore into a fresh"):
        d1.restore(w, store, backup.manifest.set_id, "DB", into="app-db", workdir=tmp_path)


def test_d1_errors_carry_sqlites_message(app):
    with pytest.raises(ToolFailed, match="no such table: nowhere"):
        d1.execute(app.wrangler, "DB", "SELECT * FROM nowhere")
