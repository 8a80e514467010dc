"""Object states of real schemas: fingerprinted without error, compared, and round-tripped.

The application database (fixtures/every_object.sql) holds an unpopulated materialized view,
an unlogged table, a foreign table, sub-partitions, classic inheritance, types without
equality, tables with no and with 1,600 columns, awkward names and large objects.
"""

import pytest
from appdb import load_app

from harness.pg.sql import connect
from harness.sets.location import parse_location
from harness.sets.restore import restore_set
from harness.sets.take import take_backup
from harness.verify.compare import Fingerprint, compare, take_fingerprint
from harness.verify.rls import rls_behaviour

UNICODE_TABLE = 'Ünïcode-Schema.Order "Items" 2026'


@pytest.fixture
def app(pg_server_factory):
    server = pg_server_factory("states")
    load_app(server)
    return server


def _run(target, *statements):
    with connect(target, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def test_every_object_state_is_fingerprinted(app):
    fingerprint = take_fingerprint(app.target("app"))
    data = fingerprint.data
    unpopulated = data.get("public.monthly_revenue")
    assert unpopulated is not None
    assert not unpopulated.populated
    assert data.get("public.teacher_load").populated
    assert data.get("public.session_cache").rows == 40  # unlogged, but dumped
    assert data.get("public.archived_reservations") is None  # its rows live elsewhere
    relations = fingerprint.catalog.section("relations")
    assert "kind=f" in relations["public.archived_reservations"]
    assert "server=archive" in relations["public.archived_reservations"]
    # Partitioned parents hold no rows of their own: each row is counted once, in its leaf.
    assert data.get("public.lesson_events") is None
    assert data.get("public.lesson_events_booking") is None
    leaves = ("booking_2026", "booking_other", "other")
    assert sum(data.get(f"public.lesson_events_{leaf}").rows for leaf in leaves) == 200
    # Classic inheritance: the parent's own rows only, the child's in the child.
    assert data.get("public.notices").rows == 21
    assert data.get("public.urgent_notices").rows == 5
    assert data.get("public.venues").rows == 15
    assert data.get("public.heartbeats").rows == 3
    assert data.get("public.survey_answers").rows == 7
    assert data.get(UNICODE_TABLE).rows == 3
    assert data.large_objects is not None
    assert data.large_objects.count == 4
    objects = fingerprint.catalog.section("large_objects")
    assert set(objects) == {"424201", "424202", "424203", "424204"}
    assert "owner=app_owner" in objects["424201"]
    assert "authenticated=SELECT/app_owner" in objects["424201"]
    assert "comment=Course syllabus" in objects["424201"]
    assert "archive" in fingerprint.catalog.section("foreign_servers")
    assert "archive_fdw" in fingerprint.catalog.section("foreign_data_wrappers")
    assert "app_owner on archive" in fingerprint.catalog.section("user_mappings")
    # User mapping options hold credentials: never part of a fingerprint.
    assert "fixture-not-a-secret" not in fingerprint.to_json()
    again = Fingerprint.from_json(fingerprint.to_json())
    assert compare(fingerprint, again).equal


def test_round_trip_of_every_object_state_verifies(app, pg_server_factory, tmp_path):
    location = parse_location(str(tmp_path / "set"))
    take_backup(app.target("app"), location)
    target = pg_server_factory("restored")
    restored = restore_set(location, target.target("app"), workdir=tmp_path)
    failed = [c for c in restored.checks if not c.ok]
    assert not failed, failed
    checks = {c.name: c for c in restored.checks}
    assert "not populated" in checks["data public.monthly_revenue"].detail
    assert checks["data large objects"].ok
    assert checks["catalog large_objects"].ok
    assert checks["catalog relations"].ok  # explicit grants equal to the defaults included
    result = compare(take_fingerprint(app.target("app")), take_fingerprint(target.target("app")))
    assert result.equal, result.diff
    assert not [c for c in result.checks if not c.ok], result.diff


def test_population_state_is_compared(app):
    target = app.target("app")
    before = take_fingerprint(target)
    _run(
        target,
        "REFRESH MATERIALIZED VIEW public.monthly_revenue",
        "REFRESH MATERIALIZED VIEW public.teacher_load WITH NO DATA",
    )
    result = compare(before, take_fingerprint(target))
    failed = {c.name: c.detail for c in result.failed()}
    assert "populated" in failed["data public.monthly_revenue"]
    assert "not populated" in failed["data public.teacher_load"]


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ("SELECT lo_put(424204, 1500000, '\\x00'::bytea)", "data large objects"),
        ("SELECT lo_put(424203, 10, '\\x01'::bytea)", "data large objects"),  # in the hole
        ("SELECT lo_unlink(424202)", "data large objects"),
        ("ALTER LARGE OBJECT 424204 OWNER TO app_owner", "catalog large_objects"),
        ("GRANT UPDATE ON LARGE OBJECT 424201 TO anon", "catalog large_objects"),
        ("ALTER SERVER archive OPTIONS (SET host 'elsewhere.invalid')", "catalog foreign_servers"),
        (
            "ALTER FOREIGN TABLE public.archived_reservations OPTIONS (SET table_name 'x')",
            "catalog relations",
        ),
        ("UPDATE public.venues SET location = point(0, 0.5) WHERE seats = 2", "data public.venues"),
        (
            'UPDATE public.venues SET meta = \'{"b": 1, "a": [1]}\' WHERE seats = 2',
            "data public.venues",
        ),
        ("UPDATE public.survey_answers SET q1599 = 1 WHERE q1 = 3", "data public.survey_answers"),
        ("INSERT INTO public.heartbeats DEFAULT VALUES", "data public.heartbeats"),
        ("UPDATE public.urgent_notices SET level = 9 WHERE id = 21", "data public.urgent_notices"),
        (
            "UPDATE public.session_cache SET user_id = gen_random_uuid() "
            "WHERE token = md5('token7')",
            "data public.session_cache",
        ),
        (
            'UPDATE "Ünïcode-Schema"."Order ""Items"" 2026" SET """" = \'x\' WHERE "Line No" = 3',
            f"data {UNICODE_TABLE}",
        ),
    ],
    ids=[
        "lo-byte",
        "lo-hole-filled",
        "lo-removed",
        "lo-owner",
        "lo-grant",
        "server-option",
        "foreign-table-option",
        "point",
        "json-text",
        "wide-row",
        "zero-columns",
        "inherited-child",
        "unlogged",
        "quoted-names",
    ],
)
def test_changes_to_awkward_objects_are_detected(app, change, check):
    target = app.target("app")
    before = take_fingerprint(target)
    _run(target, "SET search_path = public, extensions", change)
    failed = {c.name for c in compare(before, take_fingerprint(target)).failed()}
    assert check in failed, f"caught only by {sorted(failed)}"
    if check == "data public.urgent_notices":
        assert "data public.notices" not in failed, "a child's rows counted in its parent"


def test_temporary_tables_of_other_sessions_are_not_part_of_the_database(app):
    target = app.target("app")
    before = take_fingerprint(target)
    with connect(target, autocommit=True) as other:
        other.execute(
            "CREATE TEMP TABLE scratch (id int PRIMARY KEY, v text CHECK (v <> ''), p point) "
        )
        other.execute("CREATE INDEX ON scratch (v)")
        other.execute("ALTER TABLE scratch ENABLE ROW LEVEL SECURITY")
        other.execute("CREATE POLICY scratch_read ON scratch FOR SELECT USING (true)")
        other.execute("CREATE TEMP SEQUENCE scratch_seq")
        other.execute("INSERT INTO scratch VALUES (1, 'a', point(1, 2))")
        during = take_fingerprint(target)
        behaviour = rls_behaviour(target)  # must not try to read another session's table
    result = compare(before, during)
    assert result.equal, result.diff
    assert not [c for c in result.checks if not c.ok], result.diff
    assert not [t for t in during.data.tables if t.schema.startswith("pg_temp")]
    assert not [o for o in behaviour.observations if "scratch" in o.table]


def test_rls_probes_of_a_table_without_key_or_equality_work(app):
    target = app.target("app")
    _run(
        target,
        "GRANT UPDATE, DELETE ON public.venues TO authenticated",
        "CREATE POLICY venues_edit ON public.venues FOR UPDATE TO authenticated USING (true)",
    )
    observed = {o.key: o for o in rls_behaviour(target).observations}
    venues = [o for key, o in observed.items() if key.startswith("public.venues as authent")]
    assert venues
    for o in venues:
        assert o.update == "allowed", o
        assert o.delete == "no visible row", o  # no DELETE policy: nothing to delete


def test_a_schema_name_with_a_space_survives_a_backup_check(pg_server_factory, tmp_path):
    """``pg_restore --list`` prints names unquoted: spaces in schema and owner names."""
    from harness.pg.sql import create_database
    from harness.sets.check import check_set

    server = pg_server_factory("spaces")
    create_database(server.target(), "app")
    _run(
        server.target("app"),
        'CREATE ROLE "Two Word Owner"',
        'CREATE SCHEMA "Two Words"',
        'CREATE TABLE "Two Words".t (id int PRIMARY KEY)',
        'CREATE TABLE "Two Words"."t two" (id int PRIMARY KEY)',
        'ALTER TABLE "Two Words"."t two" OWNER TO "Two Word Owner"',
        'INSERT INTO "Two Words".t VALUES (1)',
        'INSERT INTO "Two Words"."t two" VALUES (2)',
    )
    location = parse_location(str(tmp_path / "set"))
    take_backup(server.target("app"), location)
    checked = check_set(location, workdir=tmp_path)
    assert checked.ok, [r for r in checked.results if not r.ok]
