"""Privileges are compared by meaning, and privileges only the restored side has fail.

A NULL ACL means the object's default privileges: an explicit grant that equals them (which
pg_dump leaves out) is the same ACL. A real extra grant, membership or policy is a security
difference and fails verification; a platform's own role that the reference does not have
at all is reported, not failed.
"""

import pytest
from appdb import load_app

from harness.pg.sql import connect, create_database
from harness.verify.compare import compare, take_fingerprint

SCHEMA = """
CREATE SCHEMA shop AUTHORIZATION acl_owner;
CREATE TABLE shop.items (id int PRIMARY KEY, name text, price numeric);
CREATE SEQUENCE shop.item_seq;
CREATE FUNCTION shop.price_of(int) RETURNS numeric LANGUAGE sql AS 'SELECT 1.0';
CREATE PROCEDURE shop.restock() LANGUAGE sql AS 'SELECT 1';
CREATE TYPE shop.size AS ENUM ('s', 'm', 'l');
CREATE DOMAIN shop.sku AS text;
CREATE FOREIGN DATA WRAPPER shop_fdw;
CREATE SERVER shop_remote FOREIGN DATA WRAPPER shop_fdw;
ALTER TABLE shop.items OWNER TO acl_owner;
ALTER SEQUENCE shop.item_seq OWNER TO acl_owner;
ALTER FUNCTION shop.price_of(int) OWNER TO acl_owner;
ALTER PROCEDURE shop.restock() OWNER TO acl_owner;
ALTER TYPE shop.size OWNER TO acl_owner;
ALTER DOMAIN shop.sku OWNER TO acl_owner;
ALTER SERVER shop_remote OWNER TO acl_owner;
SELECT lo_from_bytea(515151, 'catalogue');
ALTER LARGE OBJECT 515151 OWNER TO acl_owner;
ALTER DEFAULT PRIVILEGES FOR ROLE acl_owner IN SCHEMA shop GRANT SELECT ON TABLES TO acl_reader;
"""

# Explicit grants of exactly the default privileges: each leaves a non-NULL ACL behind.
SAME_AS_DEFAULT = [
    "GRANT ALL ON SCHEMA shop TO acl_owner",
    "GRANT ALL ON TABLE shop.items TO acl_owner",
    "GRANT ALL ON SEQUENCE shop.item_seq TO acl_owner",
    "GRANT EXECUTE ON FUNCTION shop.price_of(int) TO PUBLIC",
    "GRANT ALL ON PROCEDURE shop.restock() TO acl_owner",
    "GRANT USAGE ON TYPE shop.size TO PUBLIC",
    "GRANT USAGE ON DOMAIN shop.sku TO acl_owner",
    "GRANT USAGE ON FOREIGN SERVER shop_remote TO acl_owner",
    "GRANT ALL ON FOREIGN DATA WRAPPER shop_fdw TO CURRENT_USER",
    "GRANT SELECT, UPDATE ON LARGE OBJECT 515151 TO acl_owner",
    "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO PUBLIC",
    # A column grant taken back leaves an empty column ACL: the same as none.
    "GRANT SELECT (price) ON shop.items TO acl_reader",
    "REVOKE SELECT (price) ON shop.items FROM acl_reader",
]


@pytest.fixture
def twins(pg_server_factory):
    """Two databases with the same objects; ``one`` has explicit default-equal grants."""
    server = pg_server_factory("acl")
    with connect(server.target(), autocommit=True) as conn:
        conn.execute("CREATE ROLE acl_owner NOLOGIN")
        conn.execute("CREATE ROLE acl_reader NOLOGIN")
    for db in ("one", "two"):
        create_database(server.target(), db)
        with connect(server.target(db), autocommit=True) as conn:
            conn.execute(SCHEMA)
    with connect(server.target("one"), autocommit=True) as conn:
        for statement in SAME_AS_DEFAULT:
            conn.execute(statement.replace("{db}", "one"))
    return server.target("one"), server.target("two")


def test_explicit_grants_equal_to_the_defaults_compare_equal(twins):
    one, two = twins
    with connect(one) as conn:
        explicit = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname IN ('items', 'item_seq') "
            "AND relacl IS NOT NULL"
        ).fetchone()[0]
    assert explicit == 2, "the grants must leave explicit ACLs for this test to mean anything"
    result = compare(take_fingerprint(one), take_fingerprint(two))
    assert result.equal, result.diff
    assert not [c for c in result.checks if not c.ok], result.diff


@pytest.mark.parametrize(
    ("grant", "section"),
    [
        ("GRANT SELECT ON shop.items TO acl_reader", "relations"),
        ("GRANT SELECT ON shop.items TO acl_owner WITH GRANT OPTION", "relations"),
        ("GRANT USAGE ON SEQUENCE shop.item_seq TO PUBLIC", "relations"),
        ("GRANT EXECUTE ON FUNCTION shop.price_of(int) TO acl_reader", "functions"),
        ("REVOKE EXECUTE ON FUNCTION shop.price_of(int) FROM PUBLIC", "functions"),
        ("GRANT USAGE ON SCHEMA shop TO acl_reader", "schemas"),
        ("GRANT USAGE ON TYPE shop.size TO acl_reader", "types"),
        ("GRANT UPDATE (price) ON shop.items TO acl_reader", "columns"),
        ("GRANT SELECT ON LARGE OBJECT 515151 TO acl_reader", "large_objects"),
        ("GRANT USAGE ON FOREIGN SERVER shop_remote TO acl_reader", "foreign_servers"),
        ("GRANT CREATE ON DATABASE {db} TO acl_reader", "database"),
        (
            "ALTER DEFAULT PRIVILEGES FOR ROLE acl_owner IN SCHEMA shop "
            "GRANT INSERT ON TABLES TO acl_reader",
            "default_privileges",
        ),
        (
            "ALTER DEFAULT PRIVILEGES FOR ROLE acl_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
            "default_privileges",
        ),
    ],
    ids=[
        "table",
        "grant-option",
        "sequence",
        "function",
        "function-revoked",
        "schema",
        "type",
        "column",
        "large-object",
        "foreign-server",
        "database",
        "default-privileges",
        "default-privileges-global",
    ],
)
def test_a_real_difference_in_privileges_still_fails(twins, grant, section):
    one, two = twins
    reference = take_fingerprint(one)
    with connect(one, autocommit=True) as conn:
        conn.execute(grant.replace("{db}", "one"))
    result = compare(reference, take_fingerprint(one))
    failed = {c.name for c in result.failed()}
    assert f"catalog {section}" in failed, f"caught only by {sorted(failed)}"
    assert compare(take_fingerprint(two), take_fingerprint(one)).failed()


# -- privileges only the restored side has -------------------------------------------------


@pytest.fixture
def app(pg_server_factory):
    server = pg_server_factory("extra")
    load_app(server)
    with connect(server.target(), autocommit=True) as conn:
        conn.execute('CREATE ROLE "auditor in chief" NOLOGIN')
        conn.execute('GRANT anon TO "auditor in chief"')
    return server.target("app")


@pytest.mark.parametrize(
    ("statements", "check"),
    [
        (["GRANT service_role TO anon"], "catalog memberships"),
        (["GRANT pg_read_all_data TO authenticated"], "catalog memberships"),
        (['GRANT authenticated TO "auditor in chief"'], "catalog memberships"),
        (
            ["CREATE ROLE platform_admin", "GRANT service_role TO platform_admin"],
            "catalog memberships",
        ),
        (["GRANT SELECT ON public.payments TO anon"], "catalog relations"),
        (["GRANT anon TO authenticator WITH ADMIN OPTION"], "catalog memberships"),
        (
            [
                "CREATE POLICY payments_peek ON public.payments FOR SELECT TO authenticated "
                "USING (true)"
            ],
            "catalog policies",
        ),
    ],
    ids=[
        "membership",
        "predefined-role",
        "member-name-with-in",
        "platform-role-in-set-role",
        "grant",
        "admin-option",
        "policy",
    ],
)
def test_a_privilege_only_the_restored_side_has_fails(app, statements, check):
    reference = take_fingerprint(app)
    with connect(app, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    result = compare(reference, take_fingerprint(app))
    assert not result.equal, result.diff
    assert check in {c.name for c in result.failed()}


def test_a_platform_role_only_the_restored_side_has_is_informational(app):
    reference = take_fingerprint(app)
    with connect(app, autocommit=True) as conn:
        conn.execute("CREATE ROLE platform_admin LOGIN CREATEROLE")
        conn.execute("CREATE ROLE platform_monitor")
        conn.execute("GRANT pg_monitor TO platform_monitor")
        conn.execute("GRANT platform_monitor TO platform_admin")
    result = compare(reference, take_fingerprint(app))
    assert result.equal, result.diff
    notes = [c for c in result.checks if not c.ok]
    assert notes
    assert all(not c.critical for c in notes)
    assert any("platform_admin" in c.detail for c in notes)
