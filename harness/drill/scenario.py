"""Steps every drill scenario shares: seed, live writes, back up, verify a recovery, RPO.

Drills compose these with the disaster and the recovery that make them different. The
application keeps writing while it is backed up: :func:`live_writes` runs a continuous
writer (:mod:`harness.drill.writer`) and :func:`back_up` requires one, so every drill proves
that a set taken from a database in use restores and verifies. RPO is measured from the
writer's last committed write before the disaster to the newest write present after the
recovery (:func:`record_rpo`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from harness.config import PgTarget
from harness.drill import canary
from harness.drill.dataset import invariants
from harness.drill.run import DrillRun
from harness.drill.writer import ContinuousWriter, WriterReport
from harness.errors import DrillError
from harness.infra.providers.base import PgServer
from harness.sets.location import Location
from harness.sets.take import BackupResult, take_backup
from harness.verify.checks import CheckResult
from harness.verify.compare import Fingerprint, compare, take_fingerprint
from harness.verify.rls import RlsBehaviour, behaviour_check, rls_behaviour

WRITE_INTERVAL = 0.1  # seconds between the application's writes during a drill
OUTAGE_TIMEOUT = 30.0  # how long the application may take to notice the database is gone


def seed(run: DrillRun, server: PgServer, load: Callable[[PgServer], PgTarget]) -> PgTarget:
    """Load the application into ``server`` and write a first canary."""
    with run.phase("seed"):
        app = load(server)
        canary.write(app, "before backup")
    return app


@contextmanager
def live_writes(
    run: DrillRun, app: PgTarget, *, interval: float = WRITE_INTERVAL
) -> Iterator[ContinuousWriter]:
    """The application keeps committing canary rows for the enclosed block.

    Leave the block before anything that needs a database nobody writes to (the reference
    fingerprint and RLS probes of :func:`before_disaster`: the probes put every sequence
    back), or keep it open through a disaster that takes the database away: the writer
    outlives it and records when its writes started failing. What it did is recorded in
    the run's facts; a writer stopped by an error of its own, or that would not stop,
    fails the run.

    Args:
        run: the drill run.
        app: the application database (``drill.canary`` installed).
        interval: seconds between writes.

    Raises:
        ServerError: the writer cannot write at all (checked before the block runs).

    """
    with ContinuousWriter(app, interval=interval) as writer:
        yield writer
    report = writer.report()
    run.facts["live writes"] = f"one every {interval * 1000:.0f} ms; {report.describe()}"
    problems = []
    if report.crashed:
        problems.append(f"the writer stopped by an error: {report.crashed}")
    if report.running:
        problems.append("the writer did not stop in time")
    if problems:
        run.add([CheckResult("live writer", ok=False, critical=True, detail="; ".join(problems))])


def back_up(
    run: DrillRun,
    app: PgTarget,
    location: Location,
    *,
    writes: ContinuousWriter,
    fmt: str,
    jobs: int,
    detail: str = "",
) -> BackupResult:
    """Take the drill's backup set while ``writes`` keeps committing, and record both.

    The check ``writes during backup`` passes when the application committed while the
    backup ran and none of its writes failed: the set was taken from a database in use.

    Args:
        run: the drill run.
        app: the application database.
        location: where the set goes.
        writes: the running writer (:func:`live_writes`).
        fmt: dump format, ``custom`` or ``directory``.
        jobs: parallel dump jobs (directory format).
        detail: what the backup phase says in the timeline (default: format and jobs).

    Raises:
        BackupError: the backup failed.

    """
    before = writes.report()
    with run.phase("backup", detail or f"{fmt} format, {jobs} job(s), under live writes"):
        result = run.record_backup(take_backup(app, location, fmt=fmt, jobs=jobs))
    check_writes_during(run, before, writes.report())
    return result


def check_writes_during(run: DrillRun, before: WriterReport, after: WriterReport) -> None:
    """Add the check ``writes during backup``: the set was taken from a database in use.

    It passes when the application committed between the two reports of its writer and
    none of its writes failed.
    """
    committed, failed = after.committed - before.committed, after.failed - before.failed
    detail = f"{committed} writes committed while the backup ran, {failed} failed"
    if failed and after.last_error:
        detail += f" (last error: {after.last_error})"
    run.add(
        [
            CheckResult(
                "writes during backup",
                ok=committed > 0 and failed == 0 and after.crashed is None,
                critical=True,
                detail=detail,
            )
        ]
    )


def writes_failing(run: DrillRun, writes: ContinuousWriter) -> None:
    """After a disaster that takes the database away: the application's writes fail.

    Records when they started failing; the check fails if writes still succeed.
    """
    report = writes.wait_until_failing(OUTAGE_TIMEOUT)
    since = report.failing_since
    run.facts["application writes failing since"] = (
        since.isoformat(timespec="milliseconds") if since else "never"
    )
    run.add(
        [
            CheckResult(
                "application writes fail",
                ok=since is not None,
                critical=True,
                detail=report.last_error or f"writes still succeed after {OUTAGE_TIMEOUT:.0f} s",
            )
        ]
    )


def before_disaster(app: PgTarget) -> tuple[Fingerprint, RlsBehaviour]:
    """The reference state: fingerprint and RLS behaviour (nobody may be writing).

    The RLS probes come first: a sequence their triggers advanced and that could not be put
    back is then part of the reference too.
    """
    behaviour = rls_behaviour(app)
    return take_fingerprint(app), behaviour


def verify_in_place(
    run: DrillRun, app: PgTarget, before: Fingerprint, rls_before: RlsBehaviour
) -> None:
    """After an in-place repair: everything equals the pre-disaster state."""
    with run.phase("verify"):
        after = take_fingerprint(app)
        run.record_comparison(before, after, compare(before, after, ignore=("_drill_kept_",)))
        run.add([behaviour_check(rls_before, rls_behaviour(app))])
        run.add(invariants(app))
        run.verified()


def verify_replacement(
    run: DrillRun,
    new: PgTarget,
    backup: BackupResult,
    restore_checks: tuple[CheckResult, ...],
    rls_before: RlsBehaviour,
) -> None:
    """After a restore into a new server: the newest backup exactly, the same RLS behaviour."""
    with run.phase("verify"):
        run.add(restore_checks)
        if backup.fingerprint is not None:
            after = take_fingerprint(new)
            run.record_comparison(backup.fingerprint, after, compare(backup.fingerprint, after))
        run.add([behaviour_check(rls_before, rls_behaviour(new))])
        run.add(invariants(new))
        run.verified()


def record_rpo(run: DrillRun, writes: ContinuousWriter, recovered: PgTarget) -> float:
    """RPO: the writer's last committed write before the disaster to the newest recovered.

    Args:
        run: the drill run.
        writes: the (stopped) writer that ran up to the disaster.
        recovered: the database after the recovery.

    Raises:
        DrillError: the writer is still running (its last write would move on).

    """
    report = writes.report()
    if report.running:
        raise DrillError("leave live_writes() before measuring the RPO: the writer still runs")
    if report.last is None:
        raise DrillError("the writer committed nothing, so there is no write to measure from")
    newest = canary.newest_write(recovered)
    run.facts["last write before the disaster"] = report.last.describe()
    run.facts["newest write after recovery"] = newest.describe() if newest else "none"
    return run.record_rpo(report.last.written_at, newest.written_at if newest else None)
