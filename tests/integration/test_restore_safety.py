"""A restore on a server with a life of its own: roles planned, guarded, undone; safe swap."""

from dataclasses import replace

import pytest

from harness.errors import RestoreError, UnsafeTargetError
from harness.infra.pg_server import ServerSettings
from harness.pg.globals import export_globals
from harness.pg.sql import connect, create_database, database_exists
from harness.sets.location import parse_location
from harness.sets.restore import restore_set
from harness.sets.take import take_backup

SOURCE_ROLES = (
    "CREATE ROLE anon NOLOGIN",
    "CREATE ROLE authenticator LOGIN NOINHERIT CONNECTION LIMIT 5",
    "CREATE ROLE service_role NOLOGIN BYPASSRLS",
    "CREATE ROLE expiring LOGIN VALID UNTIL '2040-01-01 00:00:00+00'",
    "GRANT anon TO authenticator",
    "ALTER ROLE anon SET statement_timeout = '3s'",
)


@pytest.fixture
def small_set(pg_server_factory, tmp_path):
    """A small database whose objects belong to roles, backed up."""
    source = pg_server_factory("source")
    create_database(source.target(), "app")
    with connect(source.target("app"), autocommit=True) as conn:
        for statement in SOURCE_ROLES:
            conn.execute(statement)
        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 40) g")
        conn.execute("GRANT SELECT ON items TO anon")
        conn.execute("ALTER TABLE items OWNER TO service_role")
    location = parse_location(str(tmp_path / "set"))
    take_backup(source.target("app"), location, section_sql=False)
    return location


def _drift(server):
    """The target's own roles: wrong attributes and settings, a missing and an extra grant."""
    with connect(server.target(), autocommit=True) as conn:
        conn.execute("CREATE ROLE anon LOGIN VALID UNTIL '2030-01-01 00:00:00+00'")
        conn.execute("CREATE ROLE authenticator LOGIN NOINHERIT CONNECTION LIMIT 5")
        conn.execute("GRANT authenticator TO anon")  # the backup does not have it
        conn.execute("ALTER ROLE anon SET statement_timeout = '30s'")


def _roles(server):
    snapshot = export_globals(server.target())
    return {r.name: r for r in snapshot.roles}, set(snapshot.memberships)


def _expiry(server):
    with connect(server.target()) as conn:
        return dict(conn.execute("SELECT rolname, rolvaliduntil::text FROM pg_roles").fetchall())


def _scratch_databases(server):
    with connect(server.target()) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'app\\_\\_restoring\\_%' "
            "OR datname LIKE 'app\\_drill\\_old\\_%'"
        ).fetchall()
    return [r[0] for r in rows]


def test_roles_a_restore_creates_have_no_expiry_unless_the_backup_had_one(
    small_set, pg_server_factory, tmp_path
):
    target = pg_server_factory("target")
    restore_set(small_set, target.target("app"), workdir=tmp_path)
    expiry = _expiry(target)
    assert expiry["anon"] is None  # NULL, as on the source: not 'infinity'
    assert expiry["authenticator"] is None
    assert expiry["service_role"] is None
    assert expiry["expiring"].startswith("2040-01-01")


def test_an_existing_expiry_the_backup_lacks_is_cleared_with_infinity(
    small_set, pg_server_factory, tmp_path
):
    target = pg_server_factory("target")
    _drift(target)
    restore_set(small_set, target.target("app"), workdir=tmp_path)
    assert _expiry(target)["anon"] == "infinity"


def test_dry_run_lists_every_role_change_and_changes_nothing(
    small_set, pg_server_factory, tmp_path
):
    target = pg_server_factory("target")
    _drift(target)
    before = _roles(target)
    result = restore_set(small_set, target.target("app"), workdir=tmp_path, dry_run=True)
    plan = result.plan.render()
    for change in (
        "create role service_role (NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN "
        "NOREPLICATION BYPASSRLS)",
        "create role expiring (",
        "LOGIN NOREPLICATION NOBYPASSRLS VALID UNTIL '2040-01-01",
        "alter role anon: NOLOGIN VALID UNTIL 'infinity' (was LOGIN VALID UNTIL '2030-01-01",
        "set settings of role anon: statement_timeout=3s (was statement_timeout=30s)",
        "grant anon to authenticator",
        "revoke authenticator from anon (not in the backup)",
    ):
        assert change in plan, plan
    assert _roles(target) == before
    assert not database_exists(target.target(), "app")


def test_the_real_run_makes_exactly_the_planned_role_changes(
    small_set, pg_server_factory, tmp_path
):
    target = pg_server_factory("target")
    _drift(target)
    planned = restore_set(small_set, target.target("app"), workdir=tmp_path, dry_run=True)
    done = restore_set(small_set, target.target("app"), workdir=tmp_path)
    described = tuple(c.describe() for c in planned.plan.role_changes)
    assert described
    assert done.role_actions[: len(described)] == described


def test_changing_existing_roles_on_an_external_target_needs_the_allow_list(
    small_set, pg_server_factory, tmp_path
):
    target = pg_server_factory("target")
    _drift(target)
    before = _roles(target)
    lines = []
    external = replace(target.target("app"), destructive_ok=False)
    with pytest.raises(UnsafeTargetError) as info:
        restore_set(small_set, external, workdir=tmp_path, progress=lines.append)
    message = str(info.value)
    assert "alter role anon" in message
    assert "revoke authenticator from anon" in message
    assert "create role" not in message  # creating missing roles is not destructive
    assert "--drill-allow-destructive=127.0.0.1" in message
    assert not any(line.startswith("step ") for line in lines), "refused before any work"
    assert _roles(target) == before
    assert not database_exists(target.target(), "app")
    assert _scratch_databases(target) == []


def test_creating_missing_roles_needs_no_allow_list(small_set, pg_server_factory, tmp_path):
    target = pg_server_factory("target")
    external = replace(target.target("app"), destructive_ok=False)
    restored = restore_set(small_set, external, workdir=tmp_path)
    assert "create role anon (NOSUPERUSER" in "\n".join(restored.role_actions)
    assert {"anon", "authenticator", "service_role", "expiring"} <= set(_roles(target)[0])


def test_a_restore_that_fails_after_converging_roles_undoes_them(
    small_set, pg_server_factory, tmp_path
):
    target = pg_server_factory("target")
    _drift(target)
    before = _roles(target)

    def sabotage(line):
        # pg_restore starts after the roles were converged: make it unable to connect.
        if line.startswith("step pg_restore"):
            (scratch,) = _scratch_databases(target)
            with connect(target.target(), autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{scratch}" WITH ALLOW_CONNECTIONS false')

    with pytest.raises(RestoreError) as info:
        restore_set(small_set, target.target("app"), workdir=tmp_path, progress=sabotage)
    assert info.value.phase == "pg_restore"
    roles, memberships = _roles(target)
    assert roles == before[0]  # created roles dropped, attributes and settings reverted
    assert memberships == before[1]  # revoked membership granted again, granted one revoked
    assert _expiry(target)["anon"].startswith("2030-01-01")
    assert not database_exists(target.target(), "app")
    assert _scratch_databases(target) == []


def test_existing_empty_database_on_an_external_target_is_refused_before_any_work(
    small_set, pg_server_factory, tmp_path
):
    target = pg_server_factory("target")
    create_database(target.target(), "app")
    lines = []
    external = replace(target.target("app"), destructive_ok=False)
    with pytest.raises(UnsafeTargetError) as info:
        restore_set(small_set, external, workdir=tmp_path, progress=lines.append)
    assert "replace database app (it is empty)" in str(info.value)
    assert "--allow-destructive 127.0.0.1" in info.value.render("drill")
    assert "--drill-allow-destructive" not in info.value.render("drill")
    assert not any(line.startswith("step ") for line in lines), "refused before any work"
    assert "anon" not in _roles(target)[0], "no role was created"
    assert _scratch_databases(target) == []


def test_a_failed_swap_puts_the_old_database_back(small_set, pg_server_factory, tmp_path):
    target = pg_server_factory(
        "target", settings=ServerSettings(extra=(("max_prepared_transactions", "2"),))
    )
    create_database(target.target(), "app")
    with connect(target.target("app"), autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
        conn.execute("INSERT INTO precious VALUES (1), (2)")
    held = []

    def hold_the_restored_database(line):
        # A prepared transaction is a session no one can terminate: the rename must fail.
        if line.startswith("putting the restored database in place"):
            (scratch,) = [d for d in _scratch_databases(target) if "restoring" in d]
            with connect(target.target(scratch), autocommit=True) as conn:
                conn.execute("BEGIN")
                conn.execute("CREATE TABLE hold ()")
                conn.execute("PREPARE TRANSACTION 'drill_hold'")
            held.append(scratch)

    try:
        with pytest.raises(RestoreError) as info:
            restore_set(
                small_set,
                target.target("app"),
                workdir=tmp_path,
                clean=True,
                progress=hold_the_restored_database,
            )
        assert info.value.phase == "swap"
        assert "back in place as app" in str(info.value)
        with connect(target.target("app")) as conn:
            assert conn.execute("SELECT count(*) FROM precious").fetchone()[0] == 2
        assert not [d for d in _scratch_databases(target) if "drill_old" in d]
    finally:
        for scratch in held:
            with connect(target.target(scratch), autocommit=True) as conn:
                conn.execute("ROLLBACK PREPARED 'drill_hold'")
            with connect(target.target(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')


def test_a_successful_swap_leaves_no_old_database_behind(small_set, pg_server_factory, tmp_path):
    target = pg_server_factory("target")
    create_database(target.target(), "app")
    with connect(target.target("app"), autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
    restore_set(small_set, target.target("app"), workdir=tmp_path, clean=True)
    with connect(target.target("app")) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 40
        assert conn.execute("SELECT to_regclass('precious')").fetchone()[0] is None
    assert _scratch_databases(target) == []
