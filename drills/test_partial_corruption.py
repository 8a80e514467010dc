"""Partial corruption, logical and physical.

Logical: rows overwritten in two tables and a third truncated. Physical: bytes overwritten in
a table's data file while the server is down, caught by data checksums. The harness finds
the damaged tables from the fingerprint (the drill does not say which) and restores only
those, each in one transaction, while the rest of the database keeps running.
"""

import pytest
from methods import METHODS
from psycopg import sql

from harness import detect, disasters, parse_location, restore_table, scenario

pytestmark = pytest.mark.drill


@pytest.mark.parametrize("method", METHODS)
def test_partial_corruption(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method
):
    app = scenario.seed(drill_run, pg_server_factory("live"), lesson_app)
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    with scenario.live_writes(drill_run, app) as writes:
        scenario.back_up(drill_run, app, location, writes=writes, **method)
    before, rls_before = scenario.before_disaster(app)

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
    scenario.verify_in_place(drill_run, app, before, rls_before)
    scenario.record_rpo(drill_run, writes, app)

    assert set(found.damaged_tables) == {
        "public.messages_2026h1",
        "public.payments",
        "public.page_views",
    }
    assert drill_run.passed, drill_run.failures()


@pytest.mark.parametrize("method", METHODS)
def test_physical_page_corruption(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method
):
    server = pg_server_factory("live")
    app = scenario.seed(drill_run, server, lesson_app)
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    with scenario.live_writes(drill_run, app) as writes:
        scenario.back_up(drill_run, app, location, writes=writes, **method)
    before, rls_before = scenario.before_disaster(app)

    with drill_run.phase("disaster", "bytes overwritten in a data file, server restarted"):
        drill_run.facts["damaged file"] = disasters.corrupt_data_file(server, "public.page_views")
    with drill_run.phase("detect"):
        found = detect(before, app)
        drill_run.add([found.check])
    with drill_run.phase("restore", ", ".join(found.damaged_tables) + " (pages unreadable)"):
        for table in found.damaged_tables:
            restore_table(location, app, table, workdir=drill_workdir, unreadable=True)
    scenario.verify_in_place(drill_run, app, before, rls_before)
    scenario.record_rpo(drill_run, writes, app)

    assert found.damaged_tables == ("public.page_views",)
    assert drill_run.passed, drill_run.failures()
