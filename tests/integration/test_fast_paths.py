"""The shortcuts taken for speed keep their promises: same answers, same safety."""

import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness.config import DrillConfig
from harness.errors import ProviderUnavailable
from harness.infra.pg_server import ClusterTemplate, ThrowawayServer
from harness.infra.providers.embedded import EmbeddedProvider
from harness.infra.s3.seaweed import SeaweedServer
from harness.pg.binaries import find_binaries
from harness.pg.dump import dump_database, restore_dump
from harness.pg.sql import connect, create_database
from harness.sets.check import check_set
from harness.sets.location import parse_location
from harness.sets.take import take_backup
from harness.verify.compare import compare, take_fingerprint
from harness.verify.data import data_fingerprint
from harness.verify.locate import SMALL, locate_differences
from harness.waiting import wait_until


def _run(target, *statements):
    with connect(target, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


# -- servers ------------------------------------------------------------------------------


def test_a_template_keeps_a_spare_copy_and_the_next_server_starts_from_it(identity, tmp_path):
    template = ClusterTemplate(
        find_binaries(), base_dir=tmp_path / "t", identity=identity, spare=True
    )
    try:
        template.ensure()
        spares = lambda: sorted((tmp_path / "t").glob("*.spare-*[0-9]")) or None  # noqa: E731
        first = wait_until(spares, timeout=60, what="the first spare")[0]
        marker = (first / "PG_VERSION").stat().st_ino
        with ThrowawayServer(template, workdir=tmp_path / "s") as server:
            assert (server.datadir / "PG_VERSION").stat().st_ino == marker
            assert not first.exists()
            with connect(server.target()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        wait_until(spares, timeout=60, what="the next spare")
    finally:
        template.close()
    assert not list((tmp_path / "t").glob("*.spare-*")), "close() leaves no spare behind"


def test_a_stale_pid_file_that_says_ready_does_not_pass_for_the_new_server(
    default_template, tmp_path
):
    server = ThrowawayServer(default_template, workdir=tmp_path / "s")
    server.start()
    left = (server.datadir / "postmaster.pid").read_text().split("\n")
    server.stop()
    # What a crash leaves: the old start time and status "ready", and a pid now unused.
    gone = subprocess.Popen(["true"])
    gone.wait()
    (server.datadir / "postmaster.pid").write_text("\n".join([str(gone.pid), *left[1:]]))
    try:
        server.start()
        assert server.running
        with connect(server.target()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.remove()


def test_s3_started_in_the_background_is_the_one_drills_get(tmp_path):
    provider = EmbeddedProvider(DrillConfig(s3_backend="moto"), base_dir=tmp_path / "infra")
    try:
        provider.prepare_s3()
        provider.prepare_s3()  # a second call starts nothing more
        target = provider.s3_target()
        assert provider.s3_target() == target
        client = boto3.client(
            "s3",
            endpoint_url=target.endpoint_url,
            aws_access_key_id=target.access_key_id,
            aws_secret_access_key=target.secret_access_key,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="background")
        # moto keeps its buckets per process: others of this test session may show too.
        assert "background" in [b["Name"] for b in client.list_buckets()["Buckets"]]
    finally:
        provider.close()


def test_an_s3_start_that_fails_in_the_background_fails_where_s3_is_asked_for(tmp_path):
    provider = EmbeddedProvider(DrillConfig(s3_backend="minio"), base_dir=tmp_path / "infra")
    try:
        provider.prepare_s3()
        with pytest.raises(ProviderUnavailable, match="needs the docker provider"):
            provider.s3_target()
    finally:
        provider.close()


def test_seaweedfs_refuses_a_put_into_a_bucket_that_does_not_exist(tmp_path):
    with SeaweedServer(tmp_path / "weed") as server:
        target = server.target()
        client = boto3.client(
            "s3",
            endpoint_url=target.endpoint_url,
            aws_access_key_id=target.access_key_id,
            aws_secret_access_key=target.secret_access_key,
            region_name="us-east-1",
            config=Config(request_checksum_calculation="when_required"),
        )
        with pytest.raises(ClientError, match="NoSuchBucket"):
            client.put_object(Bucket="never-made", Key="k", Body=b"x")


# -- data fingerprint ---------------------------------------------------------------------

TYPES = """
CREATE TABLE typed (
    id int PRIMARY KEY, i2 int2, i8 int8, o oid, b bool, c "char", t text, v varchar(9),
    n name, bp char(5), u uuid, num numeric, f4 real, f8 float8, j jsonb, d date,
    tm time, tz timetz, ts timestamp, tstz timestamptz, ip inet, net cidr, mac macaddr,
    mac8 macaddr8, iv interval, by bytea
);
INSERT INTO typed SELECT g, g, g::int8 * 1000000000, g, g % 2 = 0, chr(65 + g % 20), 'text ' || g,
    'v' || g, 'name' || g, 'b' || g, gen_random_uuid(), g / 7.0, g / 3.0, g / 9.0,
    jsonb_build_object('k', g), DATE '2026-01-01' + g, TIME '10:00' + g * INTERVAL '1 s',
    TIMETZ '10:00+02' + g * INTERVAL '1 s', TIMESTAMP '2026-01-01' + g * INTERVAL '1 h',
    TIMESTAMPTZ '2026-01-01 00:00+00' + g * INTERVAL '1 h', ('10.0.0.' || g)::inet,
    ('10.' || g || '.0.0/16')::cidr, ('08:00:2b:01:02:' || lpad(to_hex(g), 2, '0'))::macaddr,
    ('08:00:2b:01:02:03:04:' || lpad(to_hex(g), 2, '0'))::macaddr8, g * INTERVAL '1 day',
    decode(md5(g::text), 'hex')
FROM generate_series(1, 50) g;
INSERT INTO typed (id) VALUES (0);
"""

CHANGES = {
    "time": "UPDATE typed SET tm = tm + INTERVAL '1 microsecond' WHERE id = 3",
    "timetz": "UPDATE typed SET tz = tz + INTERVAL '1 microsecond' WHERE id = 3",
    "date": "UPDATE typed SET d = 'infinity' WHERE id = 3",
    "inet": "UPDATE typed SET ip = '10.0.0.250' WHERE id = 3",
    "cidr": "UPDATE typed SET net = '10.3.0.0/24' WHERE id = 3",
    "macaddr": "UPDATE typed SET mac = '08:00:2b:01:02:ff' WHERE id = 3",
    "char": "UPDATE typed SET c = 'z' WHERE id = 3",
    "oid": "UPDATE typed SET o = 4000000000 WHERE id = 3",
    "float4": "UPDATE typed SET f4 = f4 * (1 + 1e-7) WHERE id = 3",
    "name": "UPDATE typed SET n = 'other' WHERE id = 3",
    "interval": "UPDATE typed SET iv = INTERVAL '24 hours' WHERE id = 1",  # '1 day' before
    "null-to-value": "UPDATE typed SET t = 'text 0' WHERE id = 0",
}


@pytest.fixture
def typed(pg_server_factory):
    server = pg_server_factory("typed")
    target = server.target("app")
    create_database(target, "app")
    _run(target, TYPES)
    return server


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_in_a_value_of_every_hashed_type_is_detected(typed, change):
    target = typed.target("app")
    before = take_fingerprint(target)
    _run(target, CHANGES[change])
    failed = {c.name for c in compare(before, take_fingerprint(target)).failed()}
    assert "data public.typed" in failed


def test_every_hashed_type_hashes_alike_after_a_dump_and_restore(
    typed, pg_server_factory, tmp_path
):
    source = typed.target("app")
    dump = dump_database(typed.binaries, source, tmp_path / "typed.dump")
    other = pg_server_factory("other")
    target = other.target("app")
    create_database(target, "app")
    restore_dump(other.binaries, target, dump.path)
    for version in (1, 2):
        assert data_fingerprint(source, version=version) == data_fingerprint(
            target, version=version
        )


NULLS = """
CREATE TABLE n (id int PRIMARY KEY, a text, b text);
INSERT INTO n VALUES (1, 'x', NULL), (2, NULL, 'x'), (3, 'y', 'y');
"""


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE n SET a = CASE id WHEN 1 THEN NULL ELSE 'x' END, "
        "b = CASE id WHEN 1 THEN 'x' ELSE NULL END WHERE id IN (1, 2)",  # NULLs swap rows
        "UPDATE n SET a = NULL, b = 'x' WHERE id = 1",  # a value moves past a NULL
        "UPDATE n SET a = b, b = a WHERE id = 3",  # equal values swapped: no change
    ],
    ids=["nulls-swapped-between-rows", "value-moved-across-columns", "no-change"],
)
def test_rows_with_nulls_take_the_null_safe_chain(typed, change):
    target = typed.target("app")
    _run(target, NULLS)
    before = data_fingerprint(target).get("public.n")
    _run(target, change)
    after = data_fingerprint(target).get("public.n")
    assert (before == after) == change.endswith("WHERE id = 3")


def test_a_reference_of_the_old_row_hash_is_compared_digest_for_digest(typed):
    target = typed.target("app")
    _run(target, NULLS)
    old = take_fingerprint(target)
    old = old.__class__(old.server_version, data_fingerprint(target, version=1), old.catalog)
    assert not compare(old, take_fingerprint(target)).equal  # digests of two versions
    again = take_fingerprint(target, like=old)
    assert again.data.row_hash == 1
    assert compare(old, again).equal
    # Version 1 digests are what the harness always computed: the old formula, by hand.
    with connect(target) as conn:
        by_hand = conn.execute(
            "SELECT sum(hashint8extended(coalesce(hashtextextended(b::text, 0), "
            "-7046029254386353131), hashint8extended(coalesce(hashtextextended(a::text, 0), "
            "-7046029254386353131), coalesce(hashint4extended(id, 0), "
            "-7046029254386353131))))::text FROM n"
        ).fetchone()[0]
    assert old.data.get("public.n").digest == by_hand


# -- locate -------------------------------------------------------------------------------


def _pair(pg_server_factory, ddl, fill):
    reference = pg_server_factory("ref").target("app")
    current = pg_server_factory("cur").target("app")
    for target in (reference, current):
        create_database(target, "app")
        _run(target, ddl, fill)
    return reference, current


def test_locate_finds_keys_outside_the_reference_range_and_around_its_lowest_key(
    pg_server_factory,
):
    rows = SMALL * 4
    reference, current = _pair(
        pg_server_factory,
        "CREATE TABLE k (id bigint PRIMARY KEY, v text)",
        f"INSERT INTO k SELECT g, md5(g::text) FROM generate_series(-10, {rows}) g",
    )
    _run(
        current,
        "UPDATE k SET v = 'changed' WHERE id IN (-10, -9, 0, 1, 7777)",
        "INSERT INTO k VALUES (-11, 'below'), (-99999999, 'far below'), "
        "(1000000000000, 'far above')",
        f"DELETE FROM k WHERE id = {rows}",
    )
    found = locate_differences(reference, current, "public.k")
    assert found.changed == tuple(sorted(["-10", "-9", "0", "1", "7777"]))
    assert found.extra == tuple(sorted(["-11", "-99999999", "1000000000000"]))
    assert found.missing == (str(rows),)
    assert found.rows_read < rows / 4


def test_locate_narrows_many_scattered_changes_exactly(pg_server_factory):
    rows = SMALL * 20
    reference, current = _pair(
        pg_server_factory,
        "CREATE TABLE k (id int PRIMARY KEY, v int)",
        f"INSERT INTO k SELECT g, g FROM generate_series(1, {rows}) g",
    )
    _run(current, "UPDATE k SET v = v + 1 WHERE id % 97 = 0")
    found = locate_differences(reference, current, "public.k")
    assert found.changed == tuple(sorted(str(i) for i in range(97, rows + 1, 97)))
    assert not found.missing
    assert not found.extra


def test_locate_with_a_key_that_is_not_an_integer(pg_server_factory):
    rows = SMALL * 4
    reference, current = _pair(
        pg_server_factory,
        "CREATE TABLE k (code text PRIMARY KEY, v int)",
        f"INSERT INTO k SELECT md5(g::text), g FROM generate_series(1, {rows}) g",
    )
    _run(
        current,
        "UPDATE k SET v = 0 WHERE code IN (md5('5'), md5('123'))",
        "INSERT INTO k VALUES ('zzzz-new', 1)",
    )
    found = locate_differences(reference, current, "public.k")
    with connect(reference) as conn:
        five, other = conn.execute("SELECT md5('5'), md5('123')").fetchone()
    assert found.changed == tuple(sorted([five, other]))
    assert found.extra == ("zzzz-new",)
    assert found.rows_read < rows


# -- local backup sets --------------------------------------------------------------------


def test_a_local_set_is_published_and_checked_through_links_not_copies(typed, tmp_path):
    location = parse_location(str(tmp_path / "set"))
    take_backup(typed.target("app"), location)
    checked = check_set(location, workdir=tmp_path / "work")
    assert checked.ok, checked.results
    dump = checked.manifest.dump_path()
    # The set's dump is the staged file itself, and the check read the set's own inode.
    assert (checked.root / dump).stat().st_ino == (tmp_path / "set" / dump).stat().st_ino
    assert not list(tmp_path.glob(".staging-*")), "the staging directory is gone"


def test_manifest_counts_taken_from_the_fingerprint_keep_their_meaning(typed, tmp_path):
    target = typed.target("app")
    _run(
        target,
        "CREATE TABLE parent (id int)",
        "CREATE TABLE child () INHERITS (parent)",
        "INSERT INTO parent VALUES (1), (2)",
        "INSERT INTO child VALUES (3), (4), (5)",
    )
    result = take_backup(target, parse_location(str(tmp_path / "set")))
    counts = {t.qualified: t.rows for t in result.manifest.tables}
    # A parent's count includes its children's rows, as SELECT count(*) has it ...
    assert counts["public.parent"] == 5
    assert counts["public.child"] == 3
    assert counts["public.typed"] == 51
    # ... while its digest covers its own rows only.
    assert result.fingerprint.data.get("public.parent").rows == 2
