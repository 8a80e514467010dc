"""Ransomware: tables encrypted in place by an attacker who also holds the backup credentials.

Backups are written under S3 Object Lock (COMPLIANCE): the attacker's attempts to delete
them are refused; the overwrites and delete markers they can add hide nothing from a
restore that reads the set as it was when it was taken.
"""

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from methods import METHODS

from harness import (
    CheckResult,
    ObjectNotFound,
    check_set,
    detect,
    disasters,
    parse_location,
    restore_set,
    scenario,
)

pytestmark = pytest.mark.drill

ENCRYPTED = {
    "public.messages": ["body"],
    "public.profiles": ["display_name"],
    "public.reservations": ["note"],
}


@pytest.mark.parametrize("method", METHODS)
def test_ransomware_attack(
    pg_server_factory, object_store_factory, lesson_app, drill_run, drill_workdir, method
):
    store = object_store_factory(object_lock=True)
    app = scenario.seed(drill_run, pg_server_factory("source"), lesson_app)
    location = parse_location(f"s3://{store.bucket}/sets/nightly", s3=store.target, lock_days=1)
    with scenario.live_writes(drill_run, app) as writes:
        backup = scenario.back_up(
            drill_run,
            app,
            location,
            writes=writes,
            **method,
            detail="under COMPLIANCE Object Lock for 1 day, under live writes",
        )
        time.sleep(1.1)  # S3 object timestamps have one-second resolution
        backed_up = datetime.now(UTC)
        time.sleep(1.1)
    before, rls_before = scenario.before_disaster(app)

    with drill_run.phase("disaster", "tables encrypted; every backup deleted and overwritten"):
        disasters.encrypt_in_place(app, ENCRYPTED)
        attack = disasters.destroy_backups(store, "sets/")
    drill_run.add(
        [
            CheckResult(
                "object lock refused the attacker",
                critical=True,
                ok=attack.versions_found > 0 and attack.deletes_refused == attack.versions_found,
                detail=f"{attack.deletes_refused} of {attack.versions_found} deletions refused, "
                f"{attack.deletes_done} went through; {attack.overwrites_done} keys "
                "overwritten and hidden behind delete markers",
            )
        ]
    )
    with drill_run.phase("detect"):
        found = detect(before, app)
        drill_run.add([found.check])
    with drill_run.phase("restore", f"clean server, set as of {backed_up.isoformat()}"):
        assert not _latest_view_is_usable(location, drill_workdir)
        new = pg_server_factory("clean-room").target("app")
        restored = restore_set(
            replace(location, as_of=backed_up), new, workdir=drill_workdir, jobs=method["jobs"]
        )
    scenario.verify_replacement(drill_run, new, backup, restored.checks, rls_before)
    scenario.record_rpo(drill_run, writes, new)

    assert set(found.damaged_tables) >= {"public.messages_2026h1", "public.profiles"}
    assert drill_run.passed, drill_run.failures()


def _latest_view_is_usable(location, workdir):
    try:
        return check_set(location, workdir=workdir).ok
    except ObjectNotFound:
        return False
