"""Complete data loss: the server is stopped and its data directory deleted.

The application writes throughout, from before the backup until the database is gone. A new
server is started and the latest backup set is restored from the object store; everything
committed after the backup's snapshot is the data lost, and the RPO measures it.
"""

import pytest
from methods import METHODS

from harness import detect, disasters, parse_location, restore_set, scenario

pytestmark = pytest.mark.drill


@pytest.mark.parametrize("method", METHODS)
def test_complete_data_loss(
    pg_server_factory, object_store, lesson_app, drill_run, drill_workdir, method
):
    source = pg_server_factory("source")
    app = scenario.seed(drill_run, source, lesson_app)
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    before, rls_before = scenario.before_disaster(app)  # before the application starts writing

    with scenario.live_writes(drill_run, app) as writes:
        backup = scenario.back_up(drill_run, app, location, writes=writes, **method)
        with drill_run.phase("disaster", "server stopped, data directory deleted mid-write"):
            disasters.destroy_server(source)
        with drill_run.phase("detect"):
            scenario.writes_failing(drill_run, writes)
            found = detect(before, app)
            drill_run.add([found.check])
    with drill_run.phase("restore", "new server, latest set from the object store"):
        replacement = pg_server_factory("replacement")
        new = replacement.target("app")
        restored = restore_set(location, new, workdir=drill_workdir, jobs=method["jobs"])
    scenario.verify_replacement(drill_run, new, backup, restored.checks, rls_before)
    scenario.record_rpo(drill_run, writes, new)

    assert not found.reachable
    assert drill_run.passed, drill_run.failures()
