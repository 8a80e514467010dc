"""D1 corruption: rows deleted and a table dropped in the production database (C1, C9).

The daily export (``wrangler d1 export``) goes to the backup bucket with its manifest; the
export is checked there without touching the source (SQLite in memory: integrity, row
counts, contents). After the damage, the export is restored into a fresh database, verified
against the fingerprint the backup recorded, and the application's binding is pointed at it.
The canary row written after the backup is the data the daily schedule loses.
"""

import pytest

from harness.cloudflare import d1
from harness.drill import cf_dataset, cf_steps

pytestmark = pytest.mark.drill


def test_d1_corruption(cf_stack, cf_drill_run, object_store, drill_config, drill_workdir):
    run, w = cf_drill_run, cf_stack.wrangler
    with run.phase("seed", "spots, users, reviews in D1; sessions in KV; images in R2"):
        cf_dataset.seed(
            w, cf_stack.kv, cf_stack.bucket, workdir=drill_workdir, scale=drill_config.scale
        )
        cf_steps.d1_canary(cf_stack, "before backup")
    with run.phase("backup", "wrangler d1 export, stored with its manifest"):
        backup = d1.back_up(w, [cf_dataset.DATABASE], object_store, workdir=drill_workdir)
        reference = backup.fingerprints[cf_dataset.DATABASE]
        cf_steps.record_set(run, "D1", backup.manifest, object_store.location)
    with run.phase("check backup", "the export loaded into SQLite in memory; D1 untouched"):
        checked = d1.check_backup(object_store, backup.manifest.set_id, workdir=drill_workdir)
        run.add(checked[cf_dataset.DATABASE].checks)
    last_write = cf_steps.d1_canary(cf_stack, "after backup")

    with run.phase("disaster", "low-rated reviews deleted, table favorites dropped"):
        run.facts["disaster"] = cf_steps.corrupt_d1(cf_stack)
    with run.phase("detect", "fingerprint against the backup's"):
        run.add([cf_steps.detect_d1(cf_stack, reference)])
    with run.phase("restore", "export into a fresh database, verified, binding switched"):
        fresh = cf_stack.project.add_spare_d1("machipoke-db-restored")
        restored = d1.restore(
            w,
            object_store,
            backup.manifest.set_id,
            cf_dataset.DATABASE,
            into=fresh.name,
            workdir=drill_workdir,
        )
        cf_stack.project.rebind_d1(cf_dataset.DATABASE, fresh.name)
    with run.phase("verify", "restored fingerprint, the application's reads through DB"):
        run.add(restored.checks)
        run.add([cf_steps.bound_rows(cf_stack, reference)])
        run.add(cf_dataset.cross_check(w, cf_stack.kv, cf_stack.bucket))
        run.verified()
    cf_steps.rpo(run, [last_write], [cf_steps.d1_newest_canary(cf_stack)])

    assert run.passed, run.failures()
