"""The continuous writer drills run: it commits, logs every commit, pauses, outlives the
disaster, and stops in time."""

import itertools
import threading
import time
from datetime import UTC, datetime

import pytest
from psycopg import sql

from harness.drill import canary
from harness.drill.writer import Commit, ContinuousWriter, boundary_checks
from harness.errors import ConfigError, ServerError, WaitTimeout
from harness.pg.sql import connect, create_database
from harness.waiting import wait_until


@pytest.fixture
def server(pg_server_factory):
    return pg_server_factory("app")


@pytest.fixture
def app(server):
    target = server.target("app")
    create_database(target, "app")
    canary.install(target)
    return target


def _committed_more_than(writer, count):
    return wait_until(
        lambda: writer.report().committed > count or None,
        timeout=30,
        what=f"more than {count} writes",
    )


def test_it_commits_continuously_and_knows_its_last_write(app):
    with ContinuousWriter(app, interval=0.01) as writer:
        _committed_more_than(writer, 3)
    report = writer.report()
    assert not report.running
    assert report.failed == 0
    assert report.failing_since is None
    assert report.last == canary.newest_write(app)
    with connect(app) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM drill.canary WHERE note = 'continuous'"
        ).fetchone()
    assert rows == (report.committed,)


def test_every_commit_is_logged_with_its_start_and_return(app):
    with ContinuousWriter(app, interval=0.01) as writer:
        writer.wait_for_commits(5)
    commits = writer.commits()
    assert len(commits) == writer.report().committed
    assert [c.seq for c in commits] == sorted(c.seq for c in commits)
    assert all(c.started <= c.finished for c in commits)
    assert all(a.finished <= b.started for a, b in itertools.pairwise(commits))
    assert canary.present_seqs(app) >= {c.seq for c in commits}
    assert writer.last_before(commits[2].finished + 1e-9) == commits[2]
    assert writer.last_before(commits[0].started) is None


def test_nothing_commits_while_paused(app):
    with ContinuousWriter(app, interval=0.01) as writer:
        writer.wait_for_commits(2)
        with writer.paused() as held:
            rows = len(canary.present_seqs(app))
            time.sleep(0.2)  # twenty intervals: the writer would have committed meanwhile
            assert writer.report().committed == held.committed
            assert len(canary.present_seqs(app)) == rows
        writer.wait_for_commits(2)  # and it goes on afterwards


def test_stop_is_bounded_while_paused(app):
    writer = ContinuousWriter(app, interval=0.01, stop_timeout=5).start()
    with writer.paused():
        report = writer.stop()
    assert not report.running


def test_the_applications_statements_commit_with_each_canary_row(app):
    with connect(app, autocommit=True) as conn:
        conn.execute("CREATE TABLE ticks (n int)")
    also = [sql.SQL("INSERT INTO ticks VALUES (1)")]
    with ContinuousWriter(app, interval=0.01, also=also) as writer:
        writer.wait_for_commits(3)
    with connect(app) as conn:
        ticks = conn.execute("SELECT count(*) FROM ticks").fetchone()[0]
    assert ticks == writer.report().committed


def test_waiting_for_commits_that_cannot_come_says_so(server, app):
    with ContinuousWriter(app, interval=0.01) as writer:
        writer.wait_for_commits(1)
        server.stop()
        with pytest.raises(WaitTimeout, match=r"made \d+ of \d+ commits.*failed"):
            writer.wait_for_commits(1, timeout=1)


def _commit(seq, started, finished):
    return Commit(seq, datetime.now(UTC), started, finished)


def test_boundary_checks_want_every_commit_before_and_none_after():
    commits = [_commit(1, 0, 1), _commit(2, 2, 3), _commit(3, 3.5, 4.5), _commit(4, 6, 7)]
    # Recovery point taken at 3.2, the mistake committed at 5: #3 raced it, may go either way.
    ok = boundary_checks(commits, {1, 2, 3}, before=3.2, after=5)
    assert all(c.ok for c in ok)
    assert all(c.ok for c in boundary_checks(commits, {1, 2}, before=3.2, after=5))
    lost, extra = boundary_checks(commits, {1, 4}, before=3.2, after=5)
    assert not lost.ok
    assert "missing #[2]" in lost.detail
    assert not extra.ok
    assert "#[4]" in extra.detail


def test_it_outlives_the_database_disappearing_and_resumes_when_it_returns(server, app):
    with ContinuousWriter(app, interval=0.01) as writer:
        _committed_more_than(writer, 1)
        server.stop()  # the disaster
        down = writer.wait_until_failing(30)
        assert down.failing_since is not None
        assert down.last_error
        assert down.running, "the writer died with the database"
        assert down.crashed is None
        last_before = down.last

        server.start()
        _committed_more_than(writer, down.committed)
    report = writer.report()
    assert not report.running
    assert report.failing_since is None  # writing again
    assert report.failed >= 1
    assert report.last.seq > last_before.seq
    assert report.last.written_at > last_before.written_at


def test_stop_returns_in_time_even_when_a_write_hangs(app):
    writer = ContinuousWriter(app, interval=0.01, stop_timeout=0.5).start()
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        with connect(app) as conn:
            conn.execute("LOCK TABLE drill.canary IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(60)

    holder = threading.Thread(target=hold_lock, daemon=True)
    holder.start()
    try:
        assert locked.wait(30)
        wait_until(lambda: _insert_waits_for_a_lock(app), timeout=30, what="a blocked INSERT")
        report = writer.stop()
        assert report.running
    finally:
        release.set()
        holder.join(30)
    assert not writer.stop().running  # with the lock gone, the thread ends


def _insert_waits_for_a_lock(target):
    with connect(target) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'INSERT INTO drill.canary%%'"
        ).fetchone()
    return row[0] > 0


def test_a_writer_that_cannot_write_says_why(server):
    target = server.target("postgres")  # no drill.canary here
    with pytest.raises(ServerError, match=r"drill\.canary.*canary\.install"):
        ContinuousWriter(target).start()


@pytest.mark.parametrize("option", ["interval", "stop_timeout", "start_timeout"])
def test_a_non_positive_interval_or_timeout_is_refused(server, option):
    with pytest.raises(ConfigError, match=f"writer {option} must be a positive number"):
        ContinuousWriter(server.target(), **{option: 0})
