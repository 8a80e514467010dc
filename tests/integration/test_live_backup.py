"""A backup taken while the application keeps writing restores and verifies.

The set must describe one moment: row counts, sequence values, the fingerprint and the dump
itself all come from the snapshot the harness exported, even though the drills' continuous
writer commits small transactions (an identity key, a serial key and a free-standing
sequence, with its canary row) every few milliseconds while the backup runs. Sequence
positions are the exception PostgreSQL makes (``nextval`` is not transactional): the set
records what the dump holds, and a restored sequence behind that, or behind the keys its
column already holds, fails the check.
"""

from dataclasses import replace

import pytest
from psycopg import sql

from harness.drill import canary
from harness.drill.writer import ContinuousWriter
from harness.pg.sql import connect, create_database
from harness.sets.location import parse_location
from harness.sets.restore import restore_set, verify_against_manifest
from harness.sets.take import take_backup
from harness.verify.compare import compare, take_fingerprint

SCHEMA = """
CREATE SCHEMA shop;
CREATE TABLE shop.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE SEQUENCE shop.order_no START 1000;
CREATE TABLE shop.orders (id serial PRIMARY KEY, order_no bigint NOT NULL UNIQUE);
-- A name pg_dump must quote, in a schema it must quote too.
CREATE SCHEMA "Odd.Schema";
CREATE SEQUENCE "Odd.Schema"."it's a ""ticket"" no";
-- Enough rows that the dump takes a while and the writer commits during it.
CREATE TABLE shop.history AS
    SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 150000) AS g;
ALTER TABLE shop.history ADD PRIMARY KEY (id);
"""


# The application's transaction, committed with each canary row by the continuous writer:
# an identity key, a serial key and two free-standing sequences.
WORK = (
    sql.SQL("INSERT INTO shop.events (payload) VALUES ('tick')"),
    sql.SQL("INSERT INTO shop.orders (order_no) VALUES (nextval('shop.order_no'))"),
    sql.SQL("""SELECT nextval('"Odd.Schema"."it''s a ""ticket"" no"')"""),
)


@pytest.fixture
def live(pg_server_factory):
    target = pg_server_factory("live").target("live")
    create_database(target, "live")
    with connect(target) as conn:
        conn.execute(SCHEMA)
    canary.install(target)
    return target


def _backup_under_writes(live, location, *, fmt, jobs):
    with ContinuousWriter(live, interval=0.003, also=WORK) as writer:
        # Some keys handed out before the snapshot too (the tests below step back from them).
        before = writer.wait_for_commits(3).committed
        result = take_backup(live, location, fmt=fmt, jobs=jobs)
        during = writer.report().committed - before
    report = writer.report()
    assert report.failed == 0, report.describe()
    assert report.crashed is None, report.describe()
    assert not report.running, report.describe()
    assert during > 0, "nothing was committed while the backup ran: the test proves nothing"
    return result


@pytest.mark.parametrize(
    ("fmt", "jobs"), [("custom", 1), ("directory", 2)], ids=["custom", "directory-2-jobs"]
)
def test_a_backup_taken_under_writes_restores_and_verifies(
    live, pg_server_factory, tmp_path, fmt, jobs
):
    location = parse_location(str(tmp_path / "set"))
    result = _backup_under_writes(live, location, fmt=fmt, jobs=jobs)
    manifest = result.manifest

    restored_into = pg_server_factory("restored").target("live")
    restored = restore_set(location, restored_into, workdir=tmp_path / "work", jobs=jobs)

    assert all(c.ok for c in restored.checks), [c for c in restored.checks if not c.ok]
    names = {c.name for c in restored.checks}
    assert {"row counts", "sequences"} <= names
    # Rows, sequences and fingerprint of the restored database are those the set recorded.
    rows = {t.qualified: t.rows for t in manifest.tables}
    with connect(restored_into) as conn:
        for table in ("shop.events", "shop.orders"):
            schema, name = table.split(".")
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
            ).fetchone()
            assert count == (rows[table],)
    assert result.fingerprint is not None
    assert compare(result.fingerprint, take_fingerprint(restored_into)).equal
    # The restored application can go on writing: no sequence hands out a taken key.
    with connect(restored_into) as conn:
        conn.execute("INSERT INTO shop.events (payload) VALUES ('after restore')")
        conn.execute("INSERT INTO shop.orders (order_no) VALUES (nextval('shop.order_no'))")


def test_a_parallel_dump_of_the_other_major_version_reads_the_snapshot_too(
    pg_server_factory, second_major, tmp_path
):
    target = pg_server_factory("live-other", major=second_major).target("live")
    create_database(target, "live")
    with connect(target) as conn:
        conn.execute(SCHEMA)
    canary.install(target)
    location = parse_location(str(tmp_path / "set"))
    _backup_under_writes(target, location, fmt="directory", jobs=2)
    restored_into = pg_server_factory("restored-other", major=second_major).target("live")
    restored = restore_set(location, restored_into, workdir=tmp_path / "work", jobs=2)
    assert all(c.ok for c in restored.checks), [c for c in restored.checks if not c.ok]


def test_the_set_records_the_sequence_positions_the_dump_holds(live, tmp_path):
    location = parse_location(str(tmp_path / "set"))
    result = _backup_under_writes(live, location, fmt="custom", jobs=1)
    recorded = {f"{s.schema}.{s.name}": s for s in result.manifest.sequences}
    dumped = (tmp_path / "set" / result.manifest.dump_path()).read_bytes()
    for name in ("shop.order_no", "shop.events_id_seq", "shop.orders_id_seq"):
        state = recorded[name]
        call = f"setval('{name}', {state.last_value}, {str(state.is_called).lower()})"
        assert call.encode() in dumped, f"{call} is not in the dump"
    # The fingerprint stored with the set says the same.
    assert result.fingerprint is not None
    values = result.fingerprint.catalog.section("sequence_values")
    assert values["shop.order_no"].endswith(
        f"last_value={recorded['shop.order_no'].last_value} is_called=True"
    )
    # A name pg_dump quotes is read back from the archive too.
    odd = recorded['Odd.Schema.it\'s a "ticket" no']
    assert odd.is_called
    assert odd.last_value > 1


@pytest.fixture
def restored_set(live, pg_server_factory, tmp_path):
    location = parse_location(str(tmp_path / "set"))
    result = _backup_under_writes(live, location, fmt="custom", jobs=1)
    target = pg_server_factory("restored").target("live")
    restore_set(location, target, workdir=tmp_path / "work")
    return target, result.manifest


def _check(results, name):
    return next(c for c in results if c.name == name)


def test_a_restored_sequence_behind_the_backup_fails(restored_set):
    target, manifest = restored_set
    with connect(target) as conn:
        conn.execute("SELECT setval('shop.order_no', 1000, false)")
    check = _check(verify_against_manifest(target, manifest), "sequences")
    assert not check.ok
    assert check.critical
    assert "shop.order_no" in check.detail


def test_a_restored_sequence_behind_the_keys_of_its_column_fails(restored_set):
    target, manifest = restored_set
    with connect(target) as conn:
        (top,) = conn.execute("SELECT max(id) FROM shop.events").fetchone()
        conn.execute("SELECT setval('shop.events_id_seq', %s - 1, true)", (top,))
    # Even a manifest that says so cannot make a sequence that would hand out a taken key
    # pass: the restored application's next insert would fail.
    manifest = replace(
        manifest,
        sequences=tuple(
            replace(s, last_value=top - 1) if s.name == "events_id_seq" else s
            for s in manifest.sequences
        ),
    )
    results = verify_against_manifest(target, manifest)
    failed = [c for c in results if not c.ok]
    assert failed
    assert all(c.critical for c in failed)
    assert any("shop.events_id_seq" in c.detail and "shop.events.id" in c.detail for c in failed)


def test_row_counts_come_from_the_restored_fingerprint_and_still_catch_a_lost_row(restored_set):
    target, manifest = restored_set
    counted = take_fingerprint(target)
    assert _check(verify_against_manifest(target, manifest, counted=counted), "row counts").ok
    with connect(target) as conn:
        conn.execute("DELETE FROM shop.history WHERE id = 7")
    # The fingerprint taken before the delete still counts 150000: its count is the one used
    # (no second scan), and one taken after the delete finds the lost row.
    stale = _check(verify_against_manifest(target, manifest, counted=counted), "row counts")
    assert stale.ok
    fresh = _check(
        verify_against_manifest(target, manifest, counted=take_fingerprint(target)), "row counts"
    )
    assert not fresh.ok
    assert "shop.history: 149999 rows, backup had 150000" in fresh.detail


def _backed_up(pg_server_factory, tmp_path, schema):
    """A small database made by ``schema``, and a backup of it: (source, location, result)."""
    source = pg_server_factory("small").target("small")
    create_database(source, "small")
    with connect(source) as conn:
        conn.execute(schema)
    location = parse_location(str(tmp_path / "set"))
    return source, location, take_backup(source, location)


def test_an_inheritance_parent_is_counted_with_its_children_not_from_the_fingerprint(
    pg_server_factory, tmp_path
):
    source, _, result = _backed_up(
        pg_server_factory,
        tmp_path,
        "CREATE TABLE parent (id int); CREATE TABLE child () INHERITS (parent);"
        "INSERT INTO parent SELECT generate_series(1, 3);"
        "INSERT INTO child SELECT generate_series(1, 5);",
    )
    assert {(t.name, t.rows) for t in result.manifest.tables} >= {("parent", 8), ("child", 5)}
    counts = _check(
        verify_against_manifest(source, result.manifest, counted=take_fingerprint(source)),
        "row counts",
    )
    assert counts.ok, counts.detail


def test_a_source_whose_sequence_is_already_behind_its_keys_restores_with_a_warning(
    pg_server_factory, tmp_path
):
    # A data migration inserted explicit keys and never moved the sequence on.
    _, location, _ = _backed_up(
        pg_server_factory,
        tmp_path,
        "CREATE TABLE orders (id serial PRIMARY KEY, note text);"
        "INSERT INTO orders (note) VALUES ('a'), ('b');"
        "INSERT INTO orders (id, note) SELECT g, 'migrated' FROM generate_series(10, 20) g;",
    )
    target = pg_server_factory("restored-small").target("small")
    restored = restore_set(location, target, workdir=tmp_path / "work")
    check = _check(restored.checks, "sequences ahead of keys")
    assert not check.ok
    assert not check.critical, "a faithful restore of the source's own defect is not a failure"
    assert "already like this" in check.detail
    assert "public.orders_id_seq would hand out 3 next" in check.detail
    assert "public.orders.id already holds 20" in check.detail
