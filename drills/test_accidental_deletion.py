"""Accidental deletion: DELETE without WHERE, TRUNCATE, DROP TABLE.

Writes made to other tables after the backup must survive the recovery, so the deleted rows
are put back table by table (rows whose key is missing), never by restoring everything.
DROP TABLE is stopped by the application's preventive control (an event trigger that blocks
DROP outside development, P7): the drill proves the control holds and nothing is lost.
"""

import pytest
from methods import METHODS
from psycopg import errors, sql

from harness import (
    CheckResult,
    count_rows,
    detect,
    disasters,
    parse_location,
    restore_table,
    scenario,
)

pytestmark = pytest.mark.drill

MISTAKES = {
    "delete-without-where": sql.SQL("DELETE FROM public.messages"),
    "truncate": sql.SQL("TRUNCATE public.messages"),
    "drop-table": sql.SQL("DROP TABLE public.messages"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES), ids=list(MISTAKES))
@pytest.mark.parametrize("method", METHODS)
def test_accidental_deletion(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method, mistake
):
    app = scenario.seed(drill_run, pg_server_factory("live"), lesson_app)
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    with scenario.live_writes(drill_run, app) as writes:
        scenario.back_up(drill_run, app, location, writes=writes, **method)
        # The application keeps working after the backup: these writes must survive.
        disasters.run_statement(
            app, sql.SQL("INSERT INTO public.page_views VALUES ('/after-backup', now(), 1)")
        )
    views = count_rows(app, "public", "page_views")
    before, rls_before = scenario.before_disaster(app)

    with drill_run.phase("disaster", MISTAKES[mistake].as_string(None)):
        try:
            disasters.run_statement(app, MISTAKES[mistake])
            blocked = None
        except errors.RaiseException as exc:
            blocked = str(exc).splitlines()[0]
    with drill_run.phase("detect"):
        found = detect(before, app)
    with drill_run.phase("restore", "missing rows of each damaged table, in one transaction"):
        for table in found.damaged_tables:
            restore_table(location, app, table, workdir=drill_workdir, missing_only=True)
    scenario.verify_in_place(drill_run, app, before, rls_before)
    scenario.record_rpo(drill_run, writes, app)

    if mistake == "drop-table":
        drill_run.add(
            [
                CheckResult(
                    "preventive control",
                    ok=blocked is not None,
                    critical=True,
                    detail=blocked or "DROP TABLE went through",
                )
            ]
        )
        assert found.damaged_tables == ()
    else:
        drill_run.add([found.check])
        assert set(found.damaged_tables) == {"public.messages_2026h1", "public.messages_2026h2"}
    assert count_rows(app, "public", "page_views") == views  # the write after the backup survived
    assert drill_run.passed, drill_run.failures()
