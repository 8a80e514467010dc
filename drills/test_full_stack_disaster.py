"""Full-stack disaster: PostgreSQL, the image bucket and Redis are destroyed together.

The lesson application keeps rows in PostgreSQL, user images in a bucket (each referenced by
a row of ``public.user_images``) and login sessions in Redis (each naming a user). All three
are backed up into one backup bucket under the same set id, the application writing
throughout; then the database server is deleted, the bucket emptied and Redis lost. Every
store is restored to the same recovery point (the newest set of that date of each kind),
verified on its own, and then against the others: every image a row references exists, and
every session belongs to a user that exists.
"""

from datetime import UTC, datetime

import pytest

from harness import disasters, restore_set, scenario
from harness.drill import stack
from harness.kv.backup import backup_kv, fetch_export, restore_kv, verify_kv
from harness.kv.redis_store import RedisStore
from harness.objects.backup import backup_bucket
from harness.objects.manifest import set_date
from harness.objects.restore import restore_objects, set_on_or_before

pytestmark = pytest.mark.drill


def test_full_stack_disaster(
    pg_server_factory, lesson_app, bucket_factory, redis_server_factory, drill_run, drill_workdir
):
    source = pg_server_factory("source")
    images, backups = bucket_factory(), bucket_factory()
    kv_server = redis_server_factory("source")
    kv = RedisStore(kv_server.target())
    app = scenario.seed(drill_run, source, lesson_app)
    with drill_run.phase("seed", "images referenced by rows, sessions of users"):
        stack.seed_images(app, images, count=40)
        stack.seed_sessions(kv, stack.user_ids(app))
    before, rls_before = scenario.before_disaster(app)

    set_id = datetime.now(UTC).strftime("%Y%m%d")  # one id for the three sets
    with scenario.live_writes(drill_run, app) as writes:
        backup = scenario.back_up(
            drill_run, app, stack.database_set(backups, set_id), writes=writes, fmt="custom", jobs=1
        )
        with drill_run.phase("backup", "images and key-value store, same set id"):
            objects = backup_bucket(images, backups, kind="images", set_id=set_id)
            kv_set = backup_kv(kv, backups.store(), workdir=drill_workdir, set_id=set_id)
            stack.record_object_set(drill_run, objects.manifest, objects.manifest_key)
            stack.record_object_set(drill_run, kv_set.manifest, kv_set.manifest_key)
        with drill_run.phase("disaster", "database server deleted, bucket emptied, Redis lost"):
            disasters.destroy_server(source)
            stack.empty_bucket(images, overwrite=3)
            kv_server.remove()
        with drill_run.phase("detect"):
            scenario.writes_failing(drill_run, writes)

    day = set_date(set_id)  # the one recovery point every store goes back to
    with drill_run.phase("restore", f"every store to the sets of {day}"):
        replacement = pg_server_factory("replacement")
        new = replacement.target("app")
        database = stack.database_set(backups, stack.database_set_on_or_before(backups, day))
        restored_db = restore_set(database, new, workdir=drill_workdir)
        chosen = set_on_or_before(backups, "images", day)
        restored_objects = restore_objects(backups, "images", chosen, images)
        new_kv = RedisStore(redis_server_factory("replacement").target())
        export, _ = fetch_export(
            backups.store(), set_on_or_before(backups, "kv", day), drill_workdir
        )
        restore_kv(export, new_kv)
    scenario.verify_replacement(drill_run, new, backup, restored_db.checks, rls_before)
    drill_run.add(restored_objects.comparison.checks())
    drill_run.add(verify_kv(export, new_kv).checks())
    drill_run.add(stack.cross_checks(new, images, new_kv))
    scenario.record_rpo(drill_run, writes, new)

    assert before is not None
    assert drill_run.passed, drill_run.failures()
