"""Mutation tests: every kind of change is detected, and unchanged databases compare equal."""

import struct

import pytest
from appdb import load_app

from harness.pg.sql import connect
from harness.verify.compare import Fingerprint, compare, take_fingerprint
from harness.verify.locate import SMALL, locate_differences
from harness.verify.rls import compare_behaviour, rls_behaviour


@pytest.fixture
def app(pg_server_factory):
    server = pg_server_factory("fp")
    load_app(server)
    return server.target("app")


def _run(target, *statements, params=None):
    with connect(target, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement, params)


def _next_float32(value):
    bits = struct.unpack(">I", struct.pack(">f", value))[0]
    return struct.unpack(">f", struct.pack(">I", bits + 1))[0]


def _float_last_bit(target):
    with connect(target) as conn:
        ms = conn.execute(
            "SELECT ms FROM public.page_views WHERE path = '/p/5' ORDER BY viewed_at LIMIT 1"
        ).fetchone()[0]
    _run(
        target,
        "UPDATE public.page_views SET ms = %s::real WHERE path = '/p/5' AND "
        "viewed_at = (SELECT min(viewed_at) FROM public.page_views WHERE path = '/p/5')",
        params=(repr(_next_float32(ms)),),
    )


MUTATIONS = {
    "changed-value": (
        ["UPDATE public.lesson_slots SET capacity = capacity + 1 WHERE id = 7"],
        "data public.lesson_slots",
    ),
    "deleted-row": (["DELETE FROM public.messages WHERE id = 42"], "data public.messages_2026h1"),
    "extra-row": (
        ["INSERT INTO public.page_views VALUES ('/new', '2026-05-02', 3)"],
        "data public.page_views",
    ),
    "swapped-values": (
        [
            "UPDATE public.messages m SET body = CASE id WHEN 10 THEN "
            "(SELECT body FROM public.messages WHERE id = 11) ELSE (SELECT body FROM "
            "public.messages WHERE id = 10) END WHERE id IN (10, 11)"
        ],
        "data public.messages_2026h1",
    ),
    "float-last-bit": (_float_last_bit, "data public.page_views"),
    "policy-predicate": (
        [
            "ALTER POLICY reservations_owner ON public.reservations "
            "USING (student_id = auth.uid() OR status = 'pending')"
        ],
        "catalog policies",
    ),
    "force-rls-off": (
        ["ALTER TABLE public.reservations NO FORCE ROW LEVEL SECURITY"],
        "catalog rls",
    ),
    "role-loses-bypassrls": (["ALTER ROLE service_role NOBYPASSRLS"], "catalog roles"),
    "membership-removed": (["REVOKE anon FROM authenticator"], "catalog memberships"),
    "column-grant-revoked": (
        ["REVOKE UPDATE (display_name) ON public.profiles FROM authenticated"],
        "catalog columns",
    ),
    "default-privilege-removed": (
        ["ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM service_role"],
        "catalog default_privileges",
    ),
    "trigger-disabled": (
        ["ALTER TABLE public.reservations DISABLE TRIGGER reservations_audit"],
        "catalog triggers",
    ),
    "when-clause-changed": (
        [
            "CREATE OR REPLACE TRIGGER payments_audit AFTER UPDATE OF amount "
            "OR DELETE ON public.payments FOR EACH ROW WHEN "
            "(pg_trigger_depth() < 2) EXECUTE FUNCTION public.audit_trigger()"
        ],
        "catalog triggers",
    ),
    "enum-label-reordered": (
        [
            "ALTER TYPE public.reservation_status RENAME VALUE 'pending' TO 'tmp'",
            "ALTER TYPE public.reservation_status RENAME VALUE 'confirmed' TO 'pending'",
            "ALTER TYPE public.reservation_status RENAME VALUE 'tmp' TO 'confirmed'",
        ],
        "catalog types",
    ),
    "sequence-reset": (
        ["SELECT setval('public.invoice_number_seq', 5000, false)"],
        "catalog sequence_values",
    ),
    "comment-changed": (
        ["COMMENT ON TABLE public.reservations IS 'Bookings'"],
        "catalog relations",
    ),
    "function-body-changed": (
        [
            "CREATE OR REPLACE FUNCTION public.is_admin() RETURNS boolean "
            "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public "
            "AS $$ SELECT true $$"
        ],
        "catalog functions",
    ),
    "ownership-changed": (
        ["ALTER TABLE public.messages_2026h2 OWNER TO app_owner"],
        "catalog relations",
    ),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS), ids=list(MUTATIONS))
def test_every_mutation_is_detected_by_the_right_check(app, mutation):
    before = take_fingerprint(app)
    change, expected_check = MUTATIONS[mutation]
    if callable(change):
        change(app)
    else:
        _run(app, *change)
    result = compare(before, take_fingerprint(app))
    failed = {c.name for c in result.failed()}
    assert not result.equal
    assert expected_check in failed, f"{mutation} was caught only by {sorted(failed)}"
    assert result.diff


def test_an_unchanged_database_compares_equal_through_json(app):
    first = take_fingerprint(app)
    rls_behaviour(app)  # write probes are rolled back and leave no trace ...
    again = Fingerprint.from_json(take_fingerprint(app).to_json())
    result = compare(first, again)
    assert result.equal, result.diff  # ... sequences advanced by triggers included
    data_checks = {c.name for c in result.checks if c.name.startswith("data ")}
    # 22 tables and materialized views with rows of their own, drill.canary, large objects.
    assert len(data_checks) == 24
    assert "data public.lesson_events" not in data_checks  # partitioned: rows in the leaves
    assert "data public.archived_reservations" not in data_checks  # foreign: rows elsewhere
    assert any(c.name == "catalog policies" and c.ok for c in result.checks)


def test_probes_leave_a_sequence_advanced_when_another_session_could_have_used_it(app, caplog):
    from harness.pg.sql import sequence_positions

    def positions():
        with connect(app) as conn:
            return {(s, n): (v, c) for s, n, v, c in sequence_positions(conn)}

    before = positions()
    with connect(app) as bystander:  # an application's session: it may call nextval any time
        bystander.execute("SELECT 1")
        rls_behaviour(app, write_probes=True)
    moved = {k for k, v in positions().items() if before.get(k) != v}
    # The audit triggers' sequence was advanced by the probes and is not moved back under
    # a session that could have taken a value meanwhile; the warning names it.
    assert ("public", "audit_log_id_seq") in moved
    assert "public.audit_log_id_seq" in caplog.text
    assert "left as they are" in caplog.text
    # Alone on the database, the probes put it back.
    again = positions()
    rls_behaviour(app, write_probes=True)
    assert positions() == again


def test_timezone_and_float_settings_of_the_session_do_not_matter(app):
    first = take_fingerprint(app)
    _run(
        app,
        "ALTER DATABASE app SET TimeZone = 'Asia/Tokyo'",
        "ALTER DATABASE app SET extra_float_digits = -3",
        "ALTER DATABASE app SET DateStyle = 'SQL, DMY'",
    )
    again = take_fingerprint(app)
    data = compare(first, again, catalog=False)
    assert data.equal, data.diff


def test_rls_behaviour_changes_with_a_policy_and_names_who_is_affected(app):
    before = rls_behaviour(app)
    assert compare_behaviour(before, rls_behaviour(app)) == (True, "")
    _run(app, "ALTER POLICY reservations_owner ON public.reservations USING (true)")
    same, diff = compare_behaviour(before, rls_behaviour(app))
    assert not same
    assert "public.reservations as authenticated:" in diff
    assert "public.lesson_slots" not in diff
    observed = {o.key: o for o in before.observations}
    anon = observed["public.lesson_slots as anon"]
    assert anon.visible_rows == 120
    assert anon.insert == "no privilege"
    assert observed["public.payments as anon"].visible_rows is None
    assert observed["public.payments as service_role"].delete == "allowed"


def test_read_only_probes_on_targets_that_take_no_writes(app):
    from dataclasses import replace

    behaviour = rls_behaviour(replace(app, destructive_ok=False))
    assert {o.insert for o in behaviour.observations} == {"not probed"}


@pytest.mark.parametrize(
    "recorded", ["none", "both sides, bucketed alike", "both sides, apart", "reference only"]
)
def test_locate_finds_changed_missing_and_extra_rows_by_key(pg_server_factory, app, recorded):
    reference = app
    copy = pg_server_factory("copy").target("app")
    from harness.pg.sql import create_database

    create_database(copy, "app")
    with connect(reference) as src, connect(copy, autocommit=True) as dst:
        dst.execute("CREATE TABLE big (id bigint PRIMARY KEY, v text, f float8)")
        src.execute("CREATE TABLE big (id bigint PRIMARY KEY, v text, f float8)")
        for conn in (src, dst):
            conn.execute(
                f"INSERT INTO big SELECT g, md5(g::text), g / 3.0 FROM "
                f"generate_series(1, {SMALL * 8}) g"
            )
        src.commit()
    _run(
        copy,
        "UPDATE big SET v = 'x' WHERE id IN (17, 20000)",
        "UPDATE big SET f = f + 1e-12 WHERE id = 33333",
        "DELETE FROM big WHERE id IN (5, 39999)",
        "INSERT INTO big VALUES (99999999, 'new', 0)",
    )
    pair = (None, None)
    if recorded != "none":
        _run(copy, "ANALYZE big")
        _run(reference, "ANALYZE big")
        ref_whole = take_fingerprint(reference, buckets=True)
        ref_print = ref_whole.data.get("public.big")
        # As drill verify --locate takes it: bucketed like the reference.
        like = ref_whole if recorded == "both sides, bucketed alike" else None
        cur_print = take_fingerprint(copy, like=like, buckets=True).data.get("public.big")
        assert ref_print is not None
        assert ref_print.buckets is not None
        pair = (ref_print, None if recorded == "reference only" else cur_print)
    found = locate_differences(reference, copy, "public.big", recorded=pair)
    assert found.changed == ("17", "20000", "33333")
    assert found.missing == ("39999", "5")  # keys as text, sorted as text
    assert found.extra == ("99999999",)
    assert found.rows_read < SMALL * 8 / 4, "only the differing key ranges are read"
    # Bucketed on its own, the copy's new largest key gives it other integer buckets than
    # the reference's: its digests cannot be used, and it is read once. Bucketed like the
    # reference (the new key lands in a bucket of its own), no table is read again.
    assert (
        found.full_passes
        == {
            "none": 2,
            "both sides, bucketed alike": 0,
            "both sides, apart": 1,
            "reference only": 1,
        }[recorded]
    )


@pytest.mark.parametrize(
    ("key", "fill"),
    [("int", "g"), ("uuid", "md5(g::text)::uuid")],  # equal widths; sampled boundaries
)
def test_locate_from_both_recorded_fingerprints_reads_no_table_in_full(
    pg_server_factory, app, key, fill
):
    copy = pg_server_factory("copy").target("app")
    from harness.pg.sql import create_database

    create_database(copy, "app")
    for target in (app, copy):
        _run(
            target,
            f"CREATE TABLE big (id {key} PRIMARY KEY, v text)",
            f"INSERT INTO big SELECT {fill}, md5(g::text) FROM generate_series(1, {SMALL * 8}) g",
            "ANALYZE big",
        )
    changed = [f"{fill.replace('g', str(n)) if key == 'uuid' else n}" for n in (2, 30001)]
    _run(copy, f"UPDATE big SET v = 'x' WHERE id IN ({', '.join(changed)})")
    reference = take_fingerprint(app, buckets=True)
    current = take_fingerprint(copy, like=reference, buckets=True)  # as verify --locate does
    pair = (reference.data.get("public.big"), current.data.get("public.big"))
    found = locate_differences(app, copy, "public.big", recorded=pair)
    assert len(found.changed) == 2
    assert (found.missing, found.extra, found.full_passes) == ((), (), 0)
    assert found.rows_read < SMALL


@pytest.mark.parametrize(
    "key", ["id bigint", "id uuid DEFAULT gen_random_uuid()", "id text", "id timestamptz"]
)
def test_a_fingerprint_with_buckets_has_the_same_digests_as_a_plain_one(app, key):
    column = key.split()[0]
    fill = {
        "id bigint": "g - 20000",  # negative keys too: bucket 0 spans both sides of zero
        "id uuid DEFAULT gen_random_uuid()": "gen_random_uuid()",
        "id text": "md5(g::text)",
        "id timestamptz": "'2026-01-01'::timestamptz + g * interval '1 minute'",
    }[key]
    _run(
        app,
        f"CREATE TABLE keyed ({key} PRIMARY KEY, v text, n numeric)",
        f"INSERT INTO keyed ({column}, v, n) SELECT {fill}, "
        f"CASE WHEN g % 7 = 0 THEN NULL ELSE md5(g::text) END, g / 7.0 "
        f"FROM generate_series(1, {SMALL * 6}) g",
        "ANALYZE keyed",
    )
    plain = take_fingerprint(app)
    grouped = take_fingerprint(app, buckets=True)
    assert plain.data == grouped.data  # every digest and count, the bucketed ones too
    assert compare(plain, grouped).equal
    table = grouped.data.get("public.keyed")
    assert table is not None
    assert table.buckets is not None
    assert len(table.buckets.digests) > 100
    assert sum(n for n, _ in table.buckets.digests.values()) == SMALL * 6
    assert plain.data.get("public.keyed").buckets is None
    assert "buckets" not in grouped.to_json()
    assert Fingerprint.from_json(grouped.to_json()).data == plain.data


def test_locate_without_primary_key_compares_a_multiset(app, pg_server_factory):
    from harness.sets.location import parse_location
    from harness.sets.restore import restore_set
    from harness.sets.take import take_backup

    copy = pg_server_factory("copy")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        location = parse_location(str(Path(tmp) / "set"))
        take_backup(app, location)
        restore_set(location, copy.target("app"), workdir=Path(tmp))
    _run(
        copy.target("app"),
        "DELETE FROM public.page_views WHERE path = '/dup'",
        "INSERT INTO public.page_views VALUES ('/dup', '2026-05-01', 1.5)",
    )
    found = locate_differences(app, copy.target("app"), "public.page_views")
    assert "multiset" in found.method
    assert len(found.missing) == 1
    assert "/dup" in found.missing[0]
    assert found.extra == ()
