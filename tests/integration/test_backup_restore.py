"""Backup sets round-trip a Supabase-style database; damaged sets and bad targets are refused."""

from pathlib import Path

import pytest
from appdb import load_app, state_of

from harness.errors import BackupError, RestoreError, VerificationFailed
from harness.pg.sql import connect, database_exists
from harness.sets.check import check_set
from harness.sets.location import parse_location
from harness.sets.manifest import MANIFEST
from harness.sets.restore import restore_set
from harness.sets.take import take_backup


@pytest.fixture
def source(pg_server_factory):
    server = pg_server_factory("source")
    load_app(server)
    return server


@pytest.fixture
def backup_dir(source, tmp_path):
    location = parse_location(str(tmp_path / "set"))
    take_backup(source.target("app"), location)
    return tmp_path / "set"


@pytest.mark.parametrize(
    ("fmt", "jobs"), [("custom", 1), ("directory", 2)], ids=["custom", "directory-2-jobs"]
)
def test_round_trip_into_a_fresh_server_loses_and_changes_nothing(
    source, pg_server_factory, tmp_path, fmt, jobs
):
    location = parse_location(str(tmp_path / "set"))
    result = take_backup(source.target("app"), location, fmt=fmt, jobs=jobs)
    manifest = result.manifest
    assert {t.qualified for t in manifest.tables} >= {
        "public.reservations",
        "auth.users",
        "public.messages_2026h1",
    }
    assert manifest.wal_lsn
    assert manifest.system_identifier
    assert (tmp_path / "set" / MANIFEST).is_file()
    assert not list(tmp_path.glob(".staging-*")), "staging left behind"

    target = pg_server_factory("target")
    restored = restore_set(location, target.target("app"), workdir=tmp_path, jobs=jobs)
    assert all(c.ok for c in restored.checks)
    before, after = state_of(source), state_of(target)
    assert after["schema"] == before["schema"]
    assert after["tables"] == before["tables"]
    assert after["roles"] == before["roles"]
    assert after["memberships"] == before["memberships"]
    assert after["db_settings"] == before["db_settings"]
    assert after["db_comment"] == "lesson booking"


def test_restore_converges_roles_a_supabase_server_already_has(
    source, backup_dir, pg_server_factory, tmp_path
):
    target = pg_server_factory("supabase-like")
    with connect(target.target(), autocommit=True) as conn:
        # The initial state of a new project, drifted: wrong attributes, a missing and an
        # extra membership, other settings.
        conn.execute("CREATE ROLE anon LOGIN NOINHERIT")
        conn.execute("CREATE ROLE authenticated NOLOGIN INHERIT")
        conn.execute("CREATE ROLE service_role NOLOGIN")  # lacks BYPASSRLS
        conn.execute("CREATE ROLE authenticator LOGIN NOINHERIT")
        conn.execute("GRANT anon TO authenticator")
        conn.execute("GRANT authenticated TO anon")
        conn.execute("ALTER ROLE anon SET statement_timeout = '30s'")
    restored = restore_set(parse_location(str(backup_dir)), target.target("app"), workdir=tmp_path)
    before, after = state_of(source), state_of(target)
    assert after["roles"] == before["roles"]
    assert after["memberships"] == before["memberships"]
    assert after["schema"] == before["schema"]
    assert after["tables"] == before["tables"]
    assert any("revoke authenticated from anon" in a for a in restored.role_actions)


def test_backup_as_a_non_superuser_with_supabase_backup_privileges(source, tmp_path):
    with connect(source.target("app"), autocommit=True) as conn:
        conn.execute("ALTER ROLE drill_backup PASSWORD 'backup-pw-4242'")
    backup_role = source.target("app")
    backup_role = type(backup_role)(
        backup_role.host,
        backup_role.port,
        "drill_backup",
        "app",
        password="backup-pw-4242",
        destructive_ok=True,
    )
    result = take_backup(backup_role, parse_location(str(tmp_path / "set")))
    counts = {t.qualified: t.rows for t in result.manifest.tables}
    assert counts["public.reservations"] > 0  # FORCE RLS did not hide rows
    assert counts["public.payments"] > 0


def test_backup_role_without_bypassrls_is_refused_before_dumping(source, tmp_path):
    with connect(source.target("app"), autocommit=True) as conn:
        conn.execute("CREATE ROLE reader LOGIN PASSWORD 'reader-pw-77' IN ROLE pg_read_all_data")
    t = source.target("app")
    reader = type(t)(t.host, t.port, "reader", "app", password="reader-pw-77")
    with pytest.raises(BackupError) as info:
        take_backup(reader, parse_location(str(tmp_path / "set")))
    message = str(info.value)
    assert info.value.phase == "preflight"
    assert "BYPASSRLS" in message
    assert "public.reservations (FORCE)" in message
    assert not (tmp_path / "set").exists(), "a failed backup must not look complete"


def test_backup_role_that_cannot_read_a_large_object_is_refused_before_dumping(source, tmp_path):
    with connect(source.target("app"), autocommit=True) as conn:
        conn.execute(
            "CREATE ROLE lo_reader LOGIN BYPASSRLS PASSWORD 'lo-reader-pw-9' "
            "IN ROLE pg_read_all_data"
        )
        conn.execute("SELECT lo_from_bytea(0, 'not granted')")
    t = source.target("app")
    reader = type(t)(t.host, t.port, "lo_reader", "app", password="lo-reader-pw-9")
    with pytest.raises(BackupError) as info:
        take_backup(reader, parse_location(str(tmp_path / "set")))
    assert info.value.phase == "preflight"
    assert "cannot read" in str(info.value)
    assert "GRANT SELECT ON LARGE OBJECT" in str(info.value)
    assert not (tmp_path / "set").exists()

    with connect(source.target("app"), autocommit=True) as conn:
        for (oid,) in conn.execute("SELECT oid FROM pg_largeobject_metadata").fetchall():
            conn.execute(f"GRANT SELECT ON LARGE OBJECT {int(oid)} TO lo_reader")
    result = take_backup(reader, parse_location(str(tmp_path / "set")))
    assert result.manifest.tables


def test_s3_set_round_trip_with_manifest_written_last(
    source, object_store, pg_server_factory, tmp_path
):
    location = parse_location(f"s3://{object_store.bucket}/sets/2026-11-22", s3=object_store.target)
    result = take_backup(source.target("app"), location)
    keys = [o.key for o in object_store.list("sets/2026-11-22/")]
    assert "sets/2026-11-22/manifest.json" in keys
    assert len(keys) == len(result.manifest.artifacts) + 1
    assert check_set(location, workdir=tmp_path).ok
    target = pg_server_factory("target")
    restore_set(location, target.target("app"), workdir=tmp_path)
    assert state_of(target)["tables"] == state_of(source)["tables"]


def test_a_set_is_never_overwritten(source, backup_dir):
    from harness.errors import ConfigError

    with pytest.raises(BackupError, match="never overwritten"):
        take_backup(source.target("app"), parse_location(str(backup_dir)))
    assert isinstance(BackupError("x", phase="p"), Exception)
    assert ConfigError  # the cause carried by the BackupError


# -- damaged sets ------------------------------------------------------------------------


def _dump_file(set_dir: Path) -> Path:
    return next((set_dir / "db").glob("*.dump"))


def _truncate(set_dir):
    dump = _dump_file(set_dir)
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    return "artifact db/app.dump"


def _flip_byte(set_dir):
    dump = _dump_file(set_dir)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    return "artifact db/app.dump"


def _remove_artifact(set_dir):
    (set_dir / "globals" / "roles.json").unlink()
    return "artifact globals/roles.json"


def _add_artifact(set_dir):
    (set_dir / "db" / "payload.sh").write_text("#!/bin/sh\n")
    return "extra db/payload.sh"


def _edit_manifest(set_dir):
    path = set_dir / MANIFEST
    path.write_text(
        path.read_text()
        .replace('"rows": 300', '"rows": 299', 1)
        .replace('"rows": 60', '"rows": 61', 1)
    )
    return "manifest"


@pytest.mark.parametrize(
    "damage",
    [_truncate, _flip_byte, _remove_artifact, _add_artifact, _edit_manifest],
    ids=["truncated", "flipped-byte", "missing", "extra", "manifest-edited"],
)
def test_damaged_set_is_named_by_check_and_refused_by_restore(
    backup_dir, damage, pg_server_factory, tmp_path
):
    culprit = damage(backup_dir)
    checked = check_set(parse_location(str(backup_dir)), workdir=tmp_path)
    assert not checked.ok
    failed = [r.name for r in checked.results if not r.ok]
    assert culprit in failed
    target = pg_server_factory("target")
    with pytest.raises(VerificationFailed, match="failed its checks; nothing was restored"):
        restore_set(parse_location(str(backup_dir)), target.target("app"), workdir=tmp_path)
    assert not database_exists(target.target(), "app")


def test_set_from_a_newer_major_is_refused(
    backup_dir, second_major, pg_server_factory, source, tmp_path
):
    if second_major > source.binaries.major:
        pytest.skip("the second installed version is newer than the default one")
    older = pg_server_factory("older", major=second_major)
    with pytest.raises(RestoreError) as info:
        restore_set(parse_location(str(backup_dir)), older.target("app"), workdir=tmp_path)
    assert info.value.phase == "version"
    assert f"runs PostgreSQL {second_major}" in str(info.value)
    assert not database_exists(older.target(), "app")


def test_non_empty_target_is_refused_unless_clean(backup_dir, pg_server_factory, source, tmp_path):
    target = pg_server_factory("target")
    from harness.pg.sql import create_database

    create_database(target.target(), "app")
    with connect(target.target("app"), autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
        conn.execute("INSERT INTO precious VALUES (1)")
    with pytest.raises(RestoreError) as info:
        restore_set(parse_location(str(backup_dir)), target.target("app"), workdir=tmp_path)
    assert info.value.phase == "target"
    assert "table public.precious" in str(info.value)
    assert "--clean" in str(info.value)
    with connect(target.target("app")) as conn:
        assert conn.execute("SELECT count(*) FROM precious").fetchone()[0] == 1

    restore_set(parse_location(str(backup_dir)), target.target("app"), workdir=tmp_path, clean=True)
    assert state_of(target)["tables"] == state_of(source)["tables"]


def test_dry_run_prints_the_ordered_plan_and_changes_nothing(
    backup_dir, pg_server_factory, tmp_path
):
    target = pg_server_factory("target")
    load_app(target)
    with connect(target.target("app"), autocommit=True) as conn:
        conn.execute("DELETE FROM public.page_views WHERE ms > 10")
    before = state_of(target)
    lines = []
    result = restore_set(
        parse_location(str(backup_dir)),
        target.target("app"),
        workdir=tmp_path,
        clean=True,
        dry_run=True,
        progress=lines.append,
    )
    assert result.dry_run
    assert state_of(target) == before
    plan = result.plan.render()
    steps = [s.step for s in result.plan.steps]
    assert steps[:3] == ["extensions", "roles", "types"]
    assert steps.index("data") > steps.index("rls") > steps.index("views")
    assert dict((s.step, s.objects) for s in result.plan.steps)["rls"] == 15
    assert "--clean will replace database app, dropping: " in plan
    assert plan in "\n".join(lines)


def test_wrong_password_is_bad_input_and_names_no_secret(backup_dir, pg_server_factory, tmp_path):
    from harness.errors import ConnectError

    t = pg_server_factory("target").target("app")
    wrong = type(t)(t.host, t.port, t.user, "app", password="definitely-wrong-99")
    with pytest.raises(ConnectError) as info:
        restore_set(parse_location(str(backup_dir)), wrong, workdir=tmp_path)
    assert "definitely-wrong-99" not in str(info.value)
    assert "password was rejected" in str(info.value)
