"""R2 object loss: a third of the images deleted and one overwritten (C2).

The bucket is copied to ``backups/images/<date>/<key>`` in the backup bucket with the same
manifest as S3 object backups (size, SHA-256, ETag, content type, metadata). After the loss,
the objects that are missing or changed are put back from the set, each proven against the
manifest first, and the whole bucket is downloaded again and compared hash by hash.
"""

import pytest

from harness.cloudflare import r2_sets
from harness.drill import cf_dataset, cf_steps

pytestmark = pytest.mark.drill


def test_r2_object_loss(cf_stack, cf_drill_run, object_store, drill_config, drill_workdir):
    run, w, bucket = cf_drill_run, cf_stack.wrangler, cf_stack.bucket
    with run.phase("seed", "spots in D1, sessions in KV, one image per spot in R2"):
        cf_dataset.seed(w, cf_stack.kv, bucket, workdir=drill_workdir, scale=drill_config.scale)
        cf_steps.r2_canary(cf_stack)
    with run.phase("backup", "every object hashed and copied, manifest last"):
        backup = r2_sets.back_up(bucket, object_store, workdir=drill_workdir)
        cf_steps.record_set(run, "R2", backup.manifest, object_store.location)
    last_write = cf_steps.r2_canary(cf_stack)

    with run.phase("disaster", "every third image deleted, one overwritten"):
        run.facts["disaster"] = cf_steps.lose_r2_objects(cf_stack)
    with run.phase("detect", "the bucket against the backup's hashes"):
        damage = r2_sets.verify(bucket, backup.manifest, workdir=drill_workdir)
        run.add([cf_steps.detected("r2 loss", damage)])
    with run.phase("restore", "missing and changed objects put back from the set"):
        restored = r2_sets.restore(
            bucket, object_store, backup.manifest.set_id, workdir=drill_workdir
        )
        run.facts["R2 restore"] = (
            f"{restored.uploaded} objects uploaded, {restored.unchanged} unchanged"
        )
    with run.phase("verify", "every object's SHA-256; every spot's image present"):
        run.add(restored.checks)
        run.add(cf_dataset.cross_check(w, cf_stack.kv, bucket))
        run.verified()
    cf_steps.rpo(run, [last_write], [cf_steps.r2_newest_canary(cf_stack)])

    assert restored.uploaded > 0
    assert run.passed, run.failures()
