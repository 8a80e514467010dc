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
    behaviour_check,
    canary,
    check_set,
    compare,
    detect,
    disasters,
    invariants,
    parse_location,
    restore_set,
    rls_behaviour,
    take_backup,
    take_fingerprint,
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
    source = pg_server_factory("source")
    with drill_run.phase("seed"):
        app = lesson_app(source)
        canary.write(app, "before backup")
    location = parse_location(f"s3://{store.bucket}/sets/nightly", s3=store.target, lock_days=1)
    with drill_run.phase("backup", "under COMPLIANCE Object Lock for 1 day"):
        backup = drill_run.record_backup(
            drill_run.record_backup(
                take_backup(app, location, fmt=method["fmt"], jobs=method["jobs"])
            )
        )
    time.sleep(1.1)  # S3 object timestamps have one-second resolution
    backed_up = datetime.now(UTC)
    time.sleep(1.1)
    last_write = canary.write(app, "last before the attack")
    before, rls_before = take_fingerprint(app), rls_behaviour(app)

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
        clean_room = pg_server_factory("clean-room")
        restored = restore_set(
            replace(location, as_of=backed_up),
            clean_room.target("app"),
            workdir=drill_workdir,
            jobs=method["jobs"],
        )
    with drill_run.phase("verify"):
        new = clean_room.target("app")
        drill_run.add(restored.checks)
        # The newest backup, exactly: an older set restored would show here.
        drill_run.add(compare(backup.fingerprint, take_fingerprint(new)).checks)
        drill_run.add([behaviour_check(rls_before, rls_behaviour(new))])
        drill_run.add(invariants(new))
        drill_run.verified()
    drill_run.record_rpo(last_write, canary.newest(new))

    assert set(found.damaged_tables) >= {"public.messages_2026h1", "public.profiles"}
    assert drill_run.passed, drill_run.failures()


def _latest_view_is_usable(location, workdir):
    from harness import ObjectNotFound

    try:
        return check_set(location, workdir=workdir).ok
    except ObjectNotFound:
        return False
