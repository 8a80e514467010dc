"""Sabotaged recoveries fail the drill, with a message that names the cause."""

import pytest
from psycopg import sql

from harness import (
    DrillRun,
    RecoveryTargets,
    behaviour_check,
    canary,
    compare,
    count_rows,
    disasters,
    parse_location,
    restore_set,
    restore_table,
    rls_behaviour,
    take_backup,
    take_fingerprint,
)
from harness.config import PROFILES


def _run(targets=PROFILES["production"]):
    return DrillRun(scenario="sabotage", parameters={}, targets=targets)


@pytest.fixture
def live(pg_server_factory, lesson_app):
    server = pg_server_factory("live")
    return server, lesson_app(server)


def test_restoring_an_older_set_fails_naming_the_tables_that_moved_on(
    live, pg_server_factory, tmp_path
):
    server, app = live
    older = parse_location(str(tmp_path / "older"))
    take_backup(app, older)
    views = count_rows(app, "public", "page_views")  # grows with --drill-scale / DRILL_SCALE
    disasters.run_statement(
        app, sql.SQL("INSERT INTO public.page_views VALUES ('/new-since-older', now(), 2)")
    )
    latest = take_backup(app, parse_location(str(tmp_path / "latest")))
    run = _run()
    with run.phase("disaster"):
        disasters.destroy_server(server)
    replacement = pg_server_factory("replacement")
    restore_set(older, replacement.target("app"), workdir=tmp_path)  # the sabotage
    run.add(compare(latest.fingerprint, take_fingerprint(replacement.target("app"))).checks)
    run.verified()
    run.record_rpo(
        canary.write(replacement.target("app")), canary.newest(replacement.target("app"))
    )
    assert not run.passed
    assert f"data public.page_views: {views} rows, reference had {views + 1}" in run.failures()


def test_skipping_a_damaged_table_fails_naming_it(live, tmp_path):
    _, app = live
    location = parse_location(str(tmp_path / "set"))
    take_backup(app, location)
    before = take_fingerprint(app)
    views = count_rows(app, "public", "page_views")  # grows with --drill-scale / DRILL_SCALE
    disasters.overwrite_rows(app, "public.messages_2026h1", "body", every=5)
    disasters.run_statement(app, sql.SQL("TRUNCATE public.page_views"))
    restore_table(location, app, "public.messages_2026h1", workdir=tmp_path)  # page_views skipped
    run = _run()
    run.add(compare(before, take_fingerprint(app), ignore=("_drill_kept_",)).checks)
    assert not run.passed
    assert f"data public.page_views: 0 rows, reference had {views}" in run.failures()
    assert "messages" not in run.failures()


def test_a_policy_dropped_after_restore_fails_rls_and_catalog(live, pg_server_factory, tmp_path):
    _, app = live
    location = parse_location(str(tmp_path / "set"))
    backup = take_backup(app, location)
    rls_before = rls_behaviour(app)
    target = pg_server_factory("target")
    restore_set(location, target.target("app"), workdir=tmp_path)
    disasters.run_statement(
        target.target("app"), sql.SQL("DROP POLICY reservations_owner ON public.reservations")
    )  # the sabotage
    run = _run()
    run.add(compare(backup.fingerprint, take_fingerprint(target.target("app"))).checks)
    run.add([behaviour_check(rls_before, rls_behaviour(target.target("app")))])
    failures = run.failures()
    assert "catalog policies: missing: public.reservations.reservations_owner" in failures
    assert "rls behaviour: ~ public.reservations as authenticated:" in failures


def test_a_loss_window_over_the_target_fails_the_rpo(live):
    _, app = live
    strict = RecoveryTargets("strict", rto_seconds=3600, rpo_seconds=0.001)
    run = _run(strict)
    kept = canary.write(app, "kept")
    lost = canary.write(app, "lost")
    with run.phase("disaster"):
        pass
    run.verified()
    run.record_rpo(lost, kept)
    assert not run.passed
    assert run.failures().startswith("RPO: ")
    assert "target 0.0 s" in run.failures()
    assert "measured " in run.failures()
