"""Single-table restore (P3): one transaction, old rows kept, verified, or rolled back."""

import pytest
from appdb import load_app, state_of

from harness.errors import RestoreError
from harness.pg.sql import connect
from harness.sets.location import parse_location
from harness.sets.table_restore import restore_table
from harness.sets.take import take_backup


@pytest.fixture
def app(pg_server_factory, tmp_path):
    server = pg_server_factory("live")
    load_app(server)
    location = parse_location(str(tmp_path / "set"))
    take_backup(server.target("app"), location)
    return server, location


def _rows(server, query):
    with connect(server.target("app")) as conn:
        return conn.execute(query).fetchall()


def test_full_restore_of_a_corrupted_table_brings_back_identical_rows(app, tmp_path):
    server, location = app
    before = state_of(server)["tables"]["public.messages_2026h1"]
    with connect(server.target("app"), autocommit=True) as conn:
        conn.execute("UPDATE public.messages_2026h1 SET body = 'ransom' WHERE id % 3 = 0")
        conn.execute("DELETE FROM public.messages_2026h1 WHERE id % 7 = 0")
    result = restore_table(
        location, server.target("app"), "public.messages_2026h1", workdir=tmp_path
    )
    assert state_of(server)["tables"]["public.messages_2026h1"] == before
    assert result.rows_after == before[0]
    assert all(c.ok for c in result.checks)
    kept = _rows(server, f"SELECT count(*) FROM {result.kept_copy}")[0][0]
    assert kept == result.rows_before  # the damaged rows are kept aside, not lost


def test_missing_only_restore_keeps_writes_made_after_the_backup(app, tmp_path):
    server, location = app
    profiles_before = state_of(server)["tables"]["public.profiles"]
    with connect(server.target("app"), autocommit=True) as conn:
        conn.execute("DELETE FROM public.page_views WHERE path = '/p/3'")  # the accident
        conn.execute(
            "INSERT INTO public.reservations (slot_id, student_id, status) "
            "SELECT 7, md5('user20')::uuid, 'pending' "
            "WHERE NOT EXISTS (SELECT 1 FROM public.reservations "
            "WHERE slot_id = 7 AND student_id = md5('user20')::uuid)"
        )
        conn.execute(
            "DELETE FROM public.reservations WHERE id IN "
            "(SELECT id FROM public.reservations r WHERE NOT EXISTS "
            "(SELECT 1 FROM public.payments p WHERE p.reservation_id = r.id) "
            "ORDER BY id LIMIT 5)"
        )
    newest = _rows(server, "SELECT max(id) FROM public.reservations")[0][0]
    result = restore_table(
        location, server.target("app"), "public.reservations", workdir=tmp_path, missing_only=True
    )
    assert result.rows_written == 5
    assert _rows(server, f"SELECT count(*) FROM public.reservations WHERE id = {newest}") == [(1,)]
    assert state_of(server)["tables"]["public.profiles"] == profiles_before
    # The audit trigger was paused for the restore, and is back afterwards.
    with connect(server.target("app"), autocommit=True) as conn:
        audit = conn.execute("SELECT count(*) FROM public.audit_log").fetchone()[0]
        conn.execute("UPDATE public.reservations SET note = 'after' WHERE id = %s", (newest,))
        assert conn.execute("SELECT count(*) FROM public.audit_log").fetchone()[0] == audit + 1
    next_id = _rows(server, "SELECT nextval('public.reservations_id_seq')")[0][0]
    assert next_id > newest, "the sequence must never move backwards on a live database"


def test_full_restore_of_a_referenced_table_is_refused_naming_its_dependents(app, tmp_path):
    server, location = app
    with pytest.raises(RestoreError) as info:
        restore_table(location, server.target("app"), "public.reservations", workdir=tmp_path)
    assert "public.payments" in str(info.value)
    assert "--rows-missing-only" in str(info.value)
    assert _rows(server, "SELECT count(*) FROM pg_class WHERE relname LIKE '_drill_kept_%'") == [
        (0,)
    ], "a refused restore must leave nothing behind"


def test_missing_only_without_primary_key_is_refused(app, tmp_path):
    server, location = app
    with pytest.raises(RestoreError, match="no primary key"):
        restore_table(
            location, server.target("app"), "public.page_views", workdir=tmp_path, missing_only=True
        )


def test_table_not_in_the_set_is_named(app, tmp_path):
    server, location = app
    with pytest.raises(RestoreError, match=r"public\.nope is not in the backup set"):
        restore_table(location, server.target("app"), "public.nope", workdir=tmp_path)


def test_a_database_error_becomes_a_restore_error_and_rolls_back(app, tmp_path):
    server, location = app
    with connect(server.target("app"), autocommit=True) as conn:
        conn.execute("CREATE ROLE clerk LOGIN PASSWORD 'clerk-pw-31'")
        conn.execute("GRANT USAGE ON SCHEMA public TO clerk")
        conn.execute("GRANT SELECT ON public.page_views TO clerk")  # no INSERT, no LOCK
    before = state_of(server)["tables"]["public.page_views"]
    t = server.target("app")
    clerk = type(t)(t.host, t.port, "clerk", "app", password="clerk-pw-31", destructive_ok=True)
    with pytest.raises(RestoreError) as info:
        restore_table(location, clerk, "public.page_views", workdir=tmp_path)
    message = str(info.value)
    assert info.value.phase == "table"
    assert "permission denied" in message
    assert "rolled back, the table is as it was" in message
    assert "clerk-pw-31" not in message
    assert state_of(server)["tables"]["public.page_views"] == before
