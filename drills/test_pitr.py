"""Point-in-time recovery (P4): base backups plus archived WAL, replayed to a target.

- complete data loss under a continuous writer, with every physical method (streamed WAL,
  archive_command, an incremental chain): recovery replays all the archived WAL, the
  application is as it was, and the RPO is the writer's last commit before the disaster
  against the newest one recovered;
- partial corruption: a copy is recovered to just before the corruption and only the damaged
  tables are repaired from it, while the live database keeps running;
- accidental deletion under a continuous writer: recovery stops just before the mistake (by
  transaction id or by time); every commit before it is present, none after;
- a WAL segment missing from the archive: recovery refuses before starting, naming it;
- a random point of the archive window: the state recorded there is the state recovered.
"""

import random

import pytest
from methods import PHYSICAL
from psycopg import sql

from harness import CheckResult, canary, detect, disasters, scenario
from harness.drill import pitr_steps
from harness.drill.writer import boundary_checks
from harness.errors import WalGapError
from harness.pg.sql import connect
from harness.sets.pitr import RecoveryTarget, time_target
from harness.sets.wal_archive import read_archive
from harness.verify.compare import compare, take_fingerprint

pytestmark = pytest.mark.drill

MISTAKES = {
    "delete": sql.SQL("DELETE FROM public.messages"),
    "truncate": sql.SQL("TRUNCATE public.messages"),
    "drop-table": sql.SQL("DROP TABLE public.messages"),
}
# One recovery target kind per mistake runs by default; the other three pairs are slow.
FAST = {("delete", "xid"), ("truncate", "time"), ("drop-table", "xid")}
TARGETED = [
    pytest.param(m, by, id=f"{m}-by-{by}", marks=() if (m, by) in FAST else pytest.mark.slow)
    for m in MISTAKES
    for by in ("xid", "time")
]


def _source(pg_server_factory, object_store, drill_workdir, **method):
    plan = pitr_steps.archiving(object_store, drill_workdir, **method)
    return pg_server_factory("source", settings=plan.settings()), plan


def _complete_data_loss(pg_server_factory, object_store, lesson_app, run, workdir, method, rows=0):
    source, plan = _source(pg_server_factory, object_store, workdir, **method)
    app = scenario.seed(run, source, lesson_app)
    if rows:
        pitr_steps.load_bulk(run, app, rows)
    plan.start(source)
    with scenario.live_writes(run, app) as writes:
        pitr_steps.back_up(run, source, plan, writes=writes)
        before, rls_before = pitr_steps.reference(app, writes)
        writes.wait_for_commits(10)  # the application keeps committing after the backup
        with run.phase("disaster", "server stopped, data directory deleted, under load"):
            disasters.destroy_server(source)
        with run.phase("detect"):
            scenario.writes_failing(run, writes)
            run.add([detect(before, app).check])
    pitr_steps.stop_archiving(run, plan)
    result = pitr_steps.recover_to(
        run, plan, RecoveryTarget("latest"), source=source, workdir=workdir
    )
    try:
        new = result.server.target("app")
        pitr_steps.verify_recovered(run, new, before, rls_before)
        scenario.record_rpo(run, writes, new)
    finally:
        result.server.remove()
    assert run.passed, run.failures()


@pytest.mark.parametrize("method", PHYSICAL)
def test_complete_data_loss_pitr(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method
):
    _complete_data_loss(
        pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method
    )


@pytest.mark.slow
def test_complete_data_loss_pitr_million_rows(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir
):
    _complete_data_loss(
        pg_server_factory,
        object_store,
        lesson_app,
        drill_run,
        drill_workdir,
        {"mode": "streaming"},
        rows=1_000_000,
    )


def test_partial_corruption_pitr(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir
):
    server, plan = _source(pg_server_factory, object_store, drill_workdir)
    app = scenario.seed(drill_run, server, lesson_app)
    plan.start(server)
    with scenario.live_writes(drill_run, app) as writes:
        pitr_steps.back_up(drill_run, server, plan, writes=writes)
    # Changed after the base backup: the repair brings the tables back as they were at the
    # corruption, not as they were at the backup.
    disasters.run_statement(app, sql.SQL("UPDATE public.page_views SET ms = ms + 1"))
    before, rls_before = scenario.before_disaster(app)

    moment = pitr_steps.server_now(app)
    with drill_run.phase("disaster", "rows overwritten in two tables, one table truncated"):
        disasters.overwrite_rows(app, "public.messages_2026h1", "body", every=7)
        disasters.overwrite_rows(app, "public.payments", "details", every=5)
        disasters.run_statement(app, sql.SQL("TRUNCATE public.page_views"))
    with drill_run.phase("detect"):
        found = detect(before, app)
        drill_run.add([found.check])
    pitr_steps.repair_from_point(
        drill_run, plan, server, app, found.damaged_tables, moment, workdir=drill_workdir
    )
    scenario.verify_in_place(drill_run, app, before, rls_before)
    scenario.record_rpo(drill_run, writes, app)
    pitr_steps.stop_archiving(drill_run, plan)

    assert set(found.damaged_tables) == {
        "public.messages_2026h1",
        "public.payments",
        "public.page_views",
    }
    assert drill_run.passed, drill_run.failures()


@pytest.mark.parametrize(("mistake", "by"), TARGETED)
def test_accidental_deletion_pitr(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, mistake, by
):
    source, plan = _source(pg_server_factory, object_store, drill_workdir)
    app = scenario.seed(drill_run, source, lesson_app)
    plan.start(source)
    with scenario.live_writes(drill_run, app, interval=0.05) as writes:
        pitr_steps.back_up(drill_run, source, plan, writes=writes)
        before, _ = pitr_steps.reference(app, writes)
        with drill_run.phase("disaster", MISTAKES[mistake].as_string(None)):
            done = pitr_steps.make_mistake(app, MISTAKES[mistake])
        writes.wait_for_commits(5)  # the application writes on after the mistake
    pitr_steps.stop_archiving(drill_run, plan)
    target = (
        RecoveryTarget("xid", str(done.xid), inclusive=False)
        if by == "xid"
        else time_target(done.at)
    )
    result = pitr_steps.recover_to(drill_run, plan, target, source=source, workdir=drill_workdir)
    try:
        new = result.server.target("app")
        with drill_run.phase("verify"):
            present = canary.present_seqs(new)
            commits = writes.commits()
            drill_run.add(
                boundary_checks(commits, present, before=done.taken, after=done.committed)
            )
            drill_run.add(compare(before, take_fingerprint(new), ignore=pitr_steps.IGNORE).checks)
            drill_run.verified()
        # Recovering to before the mistake gives up only what raced it.
        last = writes.last_before(done.taken)
        drill_run.record_rpo(last.written_at, canary.newest(new))
    finally:
        result.server.remove()
    assert drill_run.passed, drill_run.failures()


def test_missing_wal_segment_is_named(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir
):
    source, plan = _source(pg_server_factory, object_store, drill_workdir)
    app = scenario.seed(drill_run, source, lesson_app)
    plan.start(source)
    with scenario.live_writes(drill_run, app) as writes:
        backup = pitr_steps.back_up(drill_run, source, plan, writes=writes)
        for _ in range(2):
            writes.wait_for_commits(1)
            plan.flush(source)
    pitr_steps.stop_archiving(drill_run, plan)
    start = backup.manifest.start_wal
    victim = next(n for n in read_archive(object_store).segments(1) if n > start)
    with drill_run.phase("disaster", f"WAL segment {victim} deleted from the archive"):
        object_store.delete(f"wal/{victim}.gz")
        object_store.delete(f"wal/{victim}.json")
    with pytest.raises(WalGapError) as caught:
        pitr_steps.recover_to(
            drill_run,
            plan,
            RecoveryTarget("latest"),
            source=source,
            workdir=drill_workdir,
        )
    drill_run.add(
        [
            CheckResult(
                "missing WAL segment named before recovery starts",
                ok=caught.value.segment == victim and victim in str(caught.value),
                critical=True,
                detail=str(caught.value).splitlines()[0],
            )
        ]
    )
    drill_run.verified()
    drill_run.record_rpo(canary.newest(app), canary.newest(app))
    assert not (drill_workdir / "pitr" / "server" / "data").exists()
    assert drill_run.passed, drill_run.failures()


def test_pitr_random_point(pg_server_factory, object_store, lesson_app, drill_run, drill_workdir):
    source, plan = _source(pg_server_factory, object_store, drill_workdir)
    app = scenario.seed(drill_run, source, lesson_app)
    plan.start(source)
    points = {}
    with scenario.live_writes(drill_run, app, interval=0.05) as writes:
        pitr_steps.back_up(drill_run, source, plan, writes=writes)
        for n in range(4):
            writes.wait_for_commits(3)
            with writes.paused():  # no commit between the restore point and its fingerprint
                disasters.run_statement(app, sql.SQL("UPDATE public.page_views SET ms = ms + 1"))
                name = f"point-{n}"
                with connect(app, autocommit=True) as conn:
                    conn.execute("SELECT pg_create_restore_point(%s)", (name,))
                points[name] = (take_fingerprint(app), canary.present_seqs(app))
    pitr_steps.stop_archiving(drill_run, plan)
    seed = random.SystemRandom().randrange(1 << 30)
    chosen = random.Random(seed).choice(sorted(points))
    drill_run.facts["random point"] = f"{chosen} (seed {seed})"
    with drill_run.phase("disaster", f"state to prove: restore point {chosen}"):
        pass
    result = pitr_steps.recover_to(
        drill_run,
        plan,
        RecoveryTarget("name", chosen),
        source=source,
        workdir=drill_workdir,
    )
    try:
        with drill_run.phase("verify"):
            fingerprint, seqs = points[chosen]
            recovered = result.server.target("app")
            drill_run.add(
                compare(fingerprint, take_fingerprint(recovered), ignore=pitr_steps.IGNORE).checks
            )
            present = canary.present_seqs(recovered)
            drill_run.add(
                [
                    CheckResult(
                        "writer rows exactly as at the point",
                        ok=present == seqs,
                        critical=True,
                        detail=f"{len(present)} rows, expected {len(seqs)}",
                    )
                ]
            )
            drill_run.verified()
        drill_run.record_rpo(canary.newest(app), canary.newest(recovered))
    finally:
        result.server.remove()
    assert drill_run.passed, drill_run.failures()
