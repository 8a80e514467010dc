"""Complete data loss: the server is stopped and its data directory deleted.

A new server is started and the latest backup set is restored from the object store.
"""

import pytest
from methods import METHODS

from harness import (
    behaviour_check,
    canary,
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


@pytest.mark.parametrize("method", METHODS)
def test_complete_data_loss(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method
):
    source = pg_server_factory("source")
    with drill_run.phase("seed"):
        app = lesson_app(source)
        canary.write(app, "before backup")
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    with drill_run.phase("backup", f"{method['fmt']} format, {method['jobs']} job(s)"):
        backup = drill_run.record_backup(
            drill_run.record_backup(
                take_backup(app, location, fmt=method["fmt"], jobs=method["jobs"])
            )
        )
    canary.write(app, "after backup")
    last_write = canary.write(app, "last before disaster")
    before, rls_before = take_fingerprint(app), rls_behaviour(app)

    with drill_run.phase("disaster", "server stopped, data directory deleted"):
        disasters.destroy_server(source)
    with drill_run.phase("detect"):
        found = detect(before, app)
        drill_run.add([found.check])
    with drill_run.phase("restore", "new server, latest set from the object store"):
        replacement = pg_server_factory("replacement")
        restored = restore_set(
            location, replacement.target("app"), workdir=drill_workdir, jobs=method["jobs"]
        )
    with drill_run.phase("verify"):
        new = replacement.target("app")
        drill_run.add(restored.checks)
        # The newest backup, exactly: an older set restored would show here.
        drill_run.add(compare(backup.fingerprint, take_fingerprint(new)).checks)
        drill_run.add([behaviour_check(rls_before, rls_behaviour(new))])
        drill_run.add(invariants(new))
        drill_run.verified()
    drill_run.record_rpo(last_write, canary.newest(new))
    drill_run.facts["server"] = replacement.binaries.describe()

    assert not found.reachable
    assert drill_run.passed, drill_run.failures()
