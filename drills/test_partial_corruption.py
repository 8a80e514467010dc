"""Partial corruption, logical and physical.

Logical: rows overwritten in two tables and a third truncated. Physical: bytes overwritten in
a table's data file while the server is down, caught by data checksums. The harness finds
the damaged tables from the fingerprint (the drill does not say which) and restores only
those, each in one transaction, while the rest of the database keeps running.
"""

import pytest
from methods import METHODS
from psycopg import sql

from harness import (
    behaviour_check,
    canary,
    compare,
    detect,
    disasters,
    invariants,
    parse_location,
    restore_table,
    rls_behaviour,
    take_backup,
    take_fingerprint,
)

pytestmark = pytest.mark.drill


@pytest.mark.parametrize("method", METHODS)
def test_partial_corruption(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method
):
    _logical(pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method)


@pytest.mark.parametrize("method", METHODS)
def test_physical_page_corruption(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method
):
    server = pg_server_factory("live")
    with drill_run.phase("seed"):
        app = lesson_app(server)
        canary.write(app, "before backup")
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    with drill_run.phase("backup"):
        drill_run.record_backup(take_backup(app, location, fmt=method["fmt"], jobs=method["jobs"]))
    last_write = canary.write(app, "last before the corruption")
    before, rls_before = take_fingerprint(app), rls_behaviour(app)

    with drill_run.phase("disaster", "bytes overwritten in a data file, server restarted"):
        damaged_file = disasters.corrupt_data_file(server, "public.page_views")
    with drill_run.phase("detect"):
        found = detect(before, app)
        drill_run.add([found.check])
    with drill_run.phase("restore", ", ".join(found.damaged_tables) + " (pages unreadable)"):
        for table in found.damaged_tables:
            restore_table(location, app, table, workdir=drill_workdir, unreadable=True)
    with drill_run.phase("verify"):
        drill_run.add(compare(before, take_fingerprint(app), ignore=("_drill_kept_",)).checks)
        drill_run.add([behaviour_check(rls_before, rls_behaviour(app))])
        drill_run.add(invariants(app))
        drill_run.verified()
    drill_run.record_rpo(last_write, canary.newest(app))
    drill_run.facts["damaged file"] = damaged_file

    assert found.damaged_tables == ("public.page_views",)
    assert drill_run.passed, drill_run.failures()


def _logical(pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method):
    server = pg_server_factory("live")
    with drill_run.phase("seed"):
        app = lesson_app(server)
        canary.write(app, "before backup")
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    with drill_run.phase("backup"):
        drill_run.record_backup(take_backup(app, location, fmt=method["fmt"], jobs=method["jobs"]))
    last_write = canary.write(app, "last before the corruption")
    before, rls_before = take_fingerprint(app), rls_behaviour(app)

    with drill_run.phase("disaster", "rows overwritten in two tables, one table truncated"):
        disasters.overwrite_rows(app, "public.messages_2026h1", "body", every=7)
        disasters.overwrite_rows(app, "public.payments", "details", every=5)
        disasters.run_statement(app, sql.SQL("TRUNCATE public.page_views"))
    with drill_run.phase("detect"):
        found = detect(before, app)
        drill_run.add([found.check])
    with drill_run.phase("restore", ", ".join(found.damaged_tables)):
        for table in found.damaged_tables:
            restore_table(location, app, table, workdir=drill_workdir)
    with drill_run.phase("verify"):
        drill_run.add(compare(before, take_fingerprint(app), ignore=("_drill_kept_",)).checks)
        drill_run.add([behaviour_check(rls_before, rls_behaviour(app))])
        drill_run.add(invariants(app))
        drill_run.verified()
    drill_run.record_rpo(last_write, canary.newest(app))

    assert set(found.damaged_tables) == {
        "public.messages_2026h1",
        "public.payments",
        "public.page_views",
    }
    assert drill_run.passed, drill_run.failures()
