"""Steps every drill scenario shares: seed, back up, verify a recovery.

Drills compose these with the disaster and the recovery that make them different.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.config import PgTarget
from harness.drill import canary
from harness.drill.dataset import invariants
from harness.drill.run import DrillRun
from harness.infra.providers.base import PgServer
from harness.sets.manifest import Location
from harness.sets.take import BackupResult, take_backup
from harness.verify.checks import CheckResult
from harness.verify.compare import Fingerprint, compare, take_fingerprint
from harness.verify.rls import RlsBehaviour, behaviour_check, rls_behaviour


def seed(run: DrillRun, server: PgServer, load: Callable[[PgServer], PgTarget]) -> PgTarget:
    """Load the application into ``server`` and write a first canary."""
    with run.phase("seed"):
        app = load(server)
        canary.write(app, "before backup")
    return app


def back_up(
    run: DrillRun, app: PgTarget, location: Location, *, fmt: str, jobs: int, detail: str = ""
) -> BackupResult:
    """Take the drill's backup set and record it."""
    with run.phase("backup", detail or f"{fmt} format, {jobs} job(s)"):
        return run.record_backup(take_backup(app, location, fmt=fmt, jobs=jobs))


def before_disaster(app: PgTarget) -> tuple[Fingerprint, RlsBehaviour]:
    """The reference state: fingerprint and RLS behaviour."""
    return take_fingerprint(app), rls_behaviour(app)


def verify_in_place(
    run: DrillRun, app: PgTarget, before: Fingerprint, rls_before: RlsBehaviour
) -> None:
    """After an in-place repair: everything equals the pre-disaster state."""
    with run.phase("verify"):
        run.add(compare(before, take_fingerprint(app), ignore=("_drill_kept_",)).checks)
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
            run.add(compare(backup.fingerprint, take_fingerprint(new)).checks)
        run.add([behaviour_check(rls_before, rls_behaviour(new))])
        run.add(invariants(new))
        run.verified()
