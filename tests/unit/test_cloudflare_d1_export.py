"""D1 exports read without D1: fingerprints, and the checks of a backup file (C9)."""

import pytest

from harness.cloudflare.d1_export import (
    D1Fingerprint,
    check_export,
    compare_fingerprints,
    fingerprint_export,
)
from harness.errors import ManifestError
from harness.storage.digest import sha256_file

# What `wrangler d1 export` writes: a pragma, the schema, one INSERT a row, no final newline.
EXPORT = """PRAGMA defer_foreign_keys=TRUE;
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE spots (id TEXT PRIMARY KEY, user_id TEXT REFERENCES users(id), lat REAL, pic BLOB);
CREATE INDEX spots_by_user ON spots (user_id);
INSERT INTO "users" VALUES('u1','O''Brien');
INSERT INTO "users" VALUES('u2','Sōta');
INSERT INTO "spots" VALUES('s1','u1',35.5,X'00ff');
INSERT INTO "spots" VALUES('s2','u2',NULL,NULL);
INSERT INTO "spots" VALUES('s3','u1',1.25,X'');"""


@pytest.fixture
def export(tmp_path):
    path = tmp_path / "db.sql"
    path.write_text(EXPORT, encoding="utf-8")
    return path


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_fingerprint_ignores_row_order_but_not_values_or_their_types(tmp_path, export):
    reference = fingerprint_export(export)
    lines = EXPORT.splitlines()
    reordered = write(tmp_path, "reordered.sql", "\n".join(lines[:4] + lines[4:][::-1]))
    assert fingerprint_export(reordered) == reference
    changed = write(tmp_path, "changed.sql", EXPORT.replace("'Sōta'", "'Sota'"))
    typed = write(tmp_path, "typed.sql", EXPORT.replace("X'00ff'", "'00ff'"))  # text, not blob
    assert fingerprint_export(changed).by_name()["users"] != reference.by_name()["users"]
    assert fingerprint_export(typed).by_name()["spots"] != reference.by_name()["spots"]
    assert fingerprint_export(changed).by_name()["spots"] == reference.by_name()["spots"]


def test_a_good_export_passes_every_check(export):
    expected = fingerprint_export(export)
    result = check_export(export, expected_sha256=sha256_file(export), expected=expected)
    assert result.ok, result.failures()
    names = [c.name for c in result.checks]
    assert names[:5] == [
        "export sha256",
        "export loads",
        "integrity_check",
        "foreign keys",
        "tables",
    ]
    assert "d1 table spots" in names


def test_an_export_cut_mid_statement_does_not_load(tmp_path, export):
    cut = write(tmp_path, "cut.sql", EXPORT[: EXPORT.index('INSERT INTO "spots"') + 25])
    result = check_export(cut)
    assert not result.ok
    assert "export loads: SQLite refuses it" in result.failures()


def test_an_export_cut_between_statements_is_caught_by_the_recorded_row_counts(tmp_path, export):
    expected = fingerprint_export(export)
    cut = write(tmp_path, "cut.sql", EXPORT.rsplit("\n", 1)[0])  # the last row is gone
    alone = check_export(cut)
    assert alone.ok  # it loads: only the manifest can tell
    result = check_export(cut, expected_sha256=sha256_file(export), expected=expected)
    assert "d1 table spots: 2 rows, reference had 3" in result.failures()
    assert "export sha256" in result.failures()


def test_a_corrupted_byte_is_caught_by_the_sha256(tmp_path, export):
    digest = sha256_file(export)
    damaged = write(tmp_path, "damaged.sql", EXPORT.replace("O''Brien", "O''Brian"))
    result = check_export(damaged, expected_sha256=digest, expected=fingerprint_export(export))
    assert result.failures().startswith("export sha256:")
    assert "d1 table users: 2 rows as expected but their content differs" in result.failures()


def test_an_empty_or_binary_file_is_not_an_export(tmp_path):
    empty = check_export(write(tmp_path, "empty.sql", ""))
    assert "tables: the export creates no table" in empty.failures()
    binary = tmp_path / "binary.sql"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert "export loads: not UTF-8 text" in check_export(binary).failures()


def test_broken_references_are_a_warning_not_a_failure(tmp_path):
    text = EXPORT + "\nINSERT INTO \"spots\" VALUES('s9','nobody',0.0,NULL);"
    result = check_export(write(tmp_path, "orphan.sql", text))
    assert result.ok
    fk = next(c for c in result.checks if c.name == "foreign keys")
    assert not fk.ok
    assert not fk.critical
    assert "spots" in fk.detail


def test_the_integrity_check_runs_on_the_loaded_database(export):
    result = check_export(export)
    integrity = next(c for c in result.checks if c.name == "integrity_check")
    assert integrity.ok
    assert integrity.detail == "ok"


def test_comparison_names_the_dropped_table_the_lost_rows_and_the_schema(tmp_path, export):
    expected = fingerprint_export(export)
    damaged = write(
        tmp_path,
        "damaged.sql",
        EXPORT.replace("CREATE INDEX spots_by_user ON spots (user_id);\n", "").replace(
            "INSERT INTO \"users\" VALUES('u2','Sōta');\n", ""
        )
        + "\nCREATE TABLE extra (x);",
    )
    checks = compare_fingerprints(expected, fingerprint_export(damaged))
    failed = {c.name: c.detail for c in checks if not c.ok}
    assert failed["d1 schema"] == "missing: index spots_by_user; unexpected: table extra"
    assert failed["d1 table users"] == "1 rows, reference had 2"
    assert failed["d1 table extra"] == "not in the reference"
    without_spots = write(tmp_path, "nospots.sql", EXPORT.split("CREATE TABLE spots")[0])
    missing = compare_fingerprints(expected, fingerprint_export(without_spots))
    assert {c.name: c.detail for c in missing}["d1 table spots"] == "table is missing"


def test_a_fingerprint_survives_its_manifest_form(export):
    fingerprint = fingerprint_export(export)
    assert D1Fingerprint.from_json(fingerprint.to_json()) == fingerprint
    with pytest.raises(ManifestError, match="D1 fingerprint is malformed"):
        D1Fingerprint.from_json({"schema": [], "tables": {"t": {"rows": "many"}}})


def test_fingerprinting_an_export_that_does_not_load_names_it(tmp_path):
    with pytest.raises(ManifestError, match=r"the D1 export bad\.sql does not load"):
        fingerprint_export(write(tmp_path, "bad.sql", "CREATE TABLE (;"))
