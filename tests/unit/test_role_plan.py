"""The role plan: a diff that executes nothing, with the SQL of each change and its undo."""

from harness.pg.globals import Globals, Membership, Role
from harness.pg.roles import plan_roles

PG15, PG17 = 150000, 170000
ALL_OFF = (
    "NOSUPERUSER",
    "INHERIT",
    "NOCREATEROLE",
    "NOCREATEDB",
    "NOLOGIN",
    "NOREPLICATION",
    "NOBYPASSRLS",
)


def _role(name, *changes, **fields):
    attrs = tuple(
        next((c for c in changes if c.endswith(a.removeprefix("NO"))), a) for a in ALL_OFF
    )
    return Role(name, attrs, **fields)


def _sql(statements):
    return [s.as_string(None) for s in statements]


def test_a_created_role_without_expiry_gets_no_valid_until():
    snapshot = Globals(roles=(_role("anon"),), memberships=())
    (change,) = plan_roles(Globals((), ()), snapshot, me="postgres")
    (create,) = _sql(change.statements(PG17))
    assert create.startswith('CREATE ROLE "anon" WITH NOSUPERUSER')
    assert "VALID UNTIL" not in create
    assert _sql(change.undo_statements(PG17)) == ['DROP ROLE IF EXISTS "anon"']
    assert not change.destructive


def test_a_created_role_with_expiry_keeps_it():
    snapshot = Globals(
        roles=(_role("temp", "LOGIN", valid_until="2040-01-01 00:00:00+00"),), memberships=()
    )
    (change,) = plan_roles(Globals((), ()), snapshot, me="postgres")
    assert "VALID UNTIL '2040-01-01 00:00:00+00'" in _sql(change.statements(PG17))[0]


def test_an_existing_expiry_is_cleared_with_infinity_and_restored_by_the_undo():
    had = _role("anon", valid_until="2030-01-01 00:00:00+00")
    (change,) = plan_roles(Globals((had,), ()), Globals((_role("anon"),), ()), me="postgres")
    assert change.action == "alter"
    assert change.destructive
    assert _sql(change.statements(PG17)) == ["ALTER ROLE \"anon\" WITH VALID UNTIL 'infinity'"]
    assert _sql(change.undo_statements(PG17)) == [
        "ALTER ROLE \"anon\" WITH VALID UNTIL '2030-01-01 00:00:00+00'"
    ]


def test_only_differing_attributes_are_altered_and_the_undo_reverts_them():
    had = _role("svc", connection_limit=3)
    want = _role("svc", "BYPASSRLS", "LOGIN")
    (change,) = plan_roles(Globals((had,), ()), Globals((want,), ()), me="postgres")
    assert _sql(change.statements(PG17)) == [
        'ALTER ROLE "svc" WITH LOGIN BYPASSRLS CONNECTION LIMIT  -1'  # psycopg's spacing
    ]
    assert _sql(change.undo_statements(PG17)) == [
        'ALTER ROLE "svc" WITH NOLOGIN NOBYPASSRLS CONNECTION LIMIT 3'
    ]
    assert change.describe() == (
        "alter role svc: LOGIN BYPASSRLS CONNECTION LIMIT -1 "
        "(was NOLOGIN NOBYPASSRLS CONNECTION LIMIT 3)"
    )


def test_the_restoring_role_keeps_its_own_attributes():
    had = _role("postgres", "SUPERUSER", "LOGIN")
    want = _role("postgres", "LOGIN")
    assert plan_roles(Globals((had,), ()), Globals((want,), ()), me="postgres") == ()


def test_settings_are_replaced_and_restored():
    had = _role("anon", settings=("statement_timeout=30s",))
    want = _role("anon", settings=("statement_timeout=3s",))
    (change,) = plan_roles(Globals((had,), ()), Globals((want,), ()), me="postgres")
    assert change.action == "settings"
    assert _sql(change.statements(PG17)) == [
        'ALTER ROLE "anon" RESET ALL',
        'ALTER ROLE "anon" SET "statement_timeout" = \'3s\'',
    ]
    assert _sql(change.undo_statements(PG17))[-1].endswith("= '30s'")


def test_memberships_revokes_come_before_grants_and_know_their_undo():
    roles = (_role("anon"), _role("authenticator"))
    current = Globals(roles, (Membership("authenticator", "anon", True, True, True),))
    snapshot = Globals(roles, (Membership("anon", "authenticator", False, False, True),))
    revoke, grant = plan_roles(current, snapshot, me="postgres")
    assert (revoke.action, grant.action) == ("revoke", "grant")
    # Both roles already exist.
    assert revoke.destructive
    assert grant.destructive
    assert _sql(revoke.statements(PG17)) == ['REVOKE "authenticator" FROM "anon"']
    assert _sql(revoke.undo_statements(PG17)) == [
        'GRANT "authenticator" TO "anon" WITH ADMIN TRUE, INHERIT TRUE, SET TRUE'
    ]
    assert _sql(grant.statements(PG17)) == [
        'GRANT "anon" TO "authenticator" WITH ADMIN FALSE, INHERIT FALSE, SET TRUE'
    ]
    assert _sql(grant.undo_statements(PG17)) == ['REVOKE "anon" FROM "authenticator"']
    assert revoke.describe() == "revoke authenticator from anon (not in the backup)"


def test_a_grant_involving_a_created_role_is_not_destructive():
    current = Globals((_role("anon"),), ())
    snapshot = Globals(
        (_role("anon"), _role("authenticator")), (Membership("anon", "authenticator"),)
    )
    create, grant = plan_roles(current, snapshot, me="postgres")
    assert (create.action, grant.action) == ("create", "grant")
    assert not grant.destructive


def test_a_changed_admin_option_before_postgresql_16_is_revoked_explicitly():
    roles = (_role("a"), _role("b"))
    current = Globals(roles, (Membership("a", "b", True),))
    snapshot = Globals(roles, (Membership("a", "b", False),))
    (change,) = plan_roles(current, snapshot, me="postgres")
    assert change.action == "change membership"
    assert _sql(change.statements(PG15)) == [
        'GRANT "a" TO "b"',
        'REVOKE ADMIN OPTION FOR "a" FROM "b"',
    ]
    assert _sql(change.undo_statements(PG15)) == ['GRANT "a" TO "b" WITH ADMIN OPTION']


def test_memberships_of_roles_the_backup_does_not_know_are_left_alone():
    current = Globals((_role("anon"), _role("dba")), (Membership("anon", "dba"),))
    snapshot = Globals((_role("anon"),), ())
    assert plan_roles(current, snapshot, me="postgres") == ()
