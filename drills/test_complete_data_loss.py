"""Complete data loss: the server is stopped and its data directory deleted.

A new server is started and the latest backup set is restored from the object store.
"""

import pytest
from methods import METHODS

from harness import canary, detect, disasters, parse_location, restore_set, scenario

pytestmark = pytest.mark.drill


@pytest.mark.parametrize("method", METHODS)
def test_complete_data_loss(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method
):
    source = pg_server_factory("source")
    app = scenario.seed(drill_run, source, lesson_app)
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    backup = scenario.back_up(drill_run, app, location, **method)
    canary.write(app, "after backup")
    last_write = canary.write(app, "last before disaster")
    before, rls_before = scenario.before_disaster(app)

    with drill_run.phase("disaster", "server stopped, data directory deleted"):
        disasters.destroy_server(source)
    with drill_run.phase("detect"):
        found = detect(before, app)
        drill_run.add([found.check])
    with drill_run.phase("restore", "new server, latest set from the object store"):
        replacement = pg_server_factory("replacement")
        new = replacement.target("app")
        restored = restore_set(location, new, workdir=drill_workdir, jobs=method["jobs"])
    scenario.verify_replacement(drill_run, new, backup, restored.checks, rls_before)
    drill_run.record_rpo(last_write, canary.newest(new))

    assert not found.reachable
    assert drill_run.passed, drill_run.failures()
