"""Full-stack disaster: D1, Workers KV and R2 destroyed together, restored to one date (C7).

Two stack backups are taken, a day apart (D1, KV and R2 each under the same date). The whole
local state goes at once. Recovery picks the newest date that all three stores have, restores
each store from that date (D1 into a fresh database the binding is then pointed at), and
verifies each against its backup and the stack as a whole: every image a D1 row references
exists in R2, every KV session belongs to an existing user. The canaries written after the
backup, one per store, measure the data lost.
"""

from datetime import UTC, datetime, timedelta

import pytest

from harness.cloudflare import d1, stack
from harness.drill import cf_dataset, cf_steps

pytestmark = pytest.mark.drill


def test_cf_full_stack_disaster(cf_stack, cf_drill_run, object_store, drill_config, drill_workdir):
    run, w, kv, bucket = cf_drill_run, cf_stack.wrangler, cf_stack.kv, cf_stack.bucket
    scale = drill_config.scale
    with run.phase("seed", "users, spots, reviews in D1; sessions in KV; images in R2"):
        app = cf_dataset.seed(w, kv, bucket, workdir=drill_workdir, scale=scale)
    with run.phase("backup", "yesterday's set: D1, KV and R2 under one date"):
        yesterday = datetime.now(UTC) - timedelta(days=1)
        older = stack.back_up_stack(
            w,
            database=cf_dataset.DATABASE,
            kv=kv,
            bucket=bucket,
            store=object_store,
            workdir=drill_workdir,
            now=yesterday,
        )
    with run.phase("seed", "a day of activity: new users, spots, images, sessions"):
        cf_dataset.seed(w, kv, bucket, workdir=drill_workdir, scale=scale, app=app)
        cf_steps.d1_canary(cf_stack, "before backup")
        cf_steps.kv_canary(cf_stack)
        cf_steps.r2_canary(cf_stack)
    with run.phase("backup", "today's set: D1, KV and R2 under one date"):
        newer = stack.back_up_stack(
            w,
            database=cf_dataset.DATABASE,
            kv=kv,
            bucket=bucket,
            store=object_store,
            workdir=drill_workdir,
        )
        for label, manifest in (
            ("D1", newer.d1.manifest),
            ("KV", newer.kv.manifest),
            ("R2", newer.r2.manifest),
        ):
            cf_steps.record_set(run, label, manifest, object_store.location)
        run.facts["older sets"] = older.set_id
    written = [cf_steps.d1_canary(cf_stack, "after backup"), cf_steps.kv_canary(cf_stack),
               cf_steps.r2_canary(cf_stack)]  # fmt: skip

    with run.phase("disaster", "D1, KV and R2 destroyed together"):
        run.facts["disaster"] = cf_steps.destroy_stack(cf_stack)
    with run.phase("detect", "the application finds no tables, no sessions, no images"):
        cf_stack.bridge.start()
        left = {
            "D1 objects": len(d1.user_objects(w, cf_dataset.DATABASE)),
            "KV keys": len(kv.list_keys()),
            "R2 objects": len(bucket.list_objects()),
        }
        gone = all(n == 0 for n in left.values())
        run.add([cf_steps.detected("stack loss", [
            cf_steps.CheckResult("stores empty", ok=not gone, critical=True,
                                 detail=", ".join(f"{k}: {v}" for k, v in left.items())),
        ])])  # fmt: skip
    with run.phase("restore", "every store from the newest common date, D1 rebound"):
        fresh = cf_stack.project.add_spare_d1("machipoke-db-restored")
        restored = stack.restore_stack(
            w,
            database=cf_dataset.DATABASE,
            into=fresh.name,
            kv=kv,
            bucket=bucket,
            store=object_store,
            workdir=drill_workdir,
        )
        cf_stack.project.rebind_d1(cf_dataset.DATABASE, fresh.name)
        run.facts["restored date"] = restored.set_id
    with run.phase("verify", "each store against its backup; D1, KV and R2 against each other"):
        run.add(restored.checks)
        run.add([cf_steps.bound_rows(cf_stack, newer.d1.fingerprints[cf_dataset.DATABASE])])
        run.add(cf_dataset.cross_check(w, kv, bucket))
        run.verified()
    survived = [cf_steps.d1_newest_canary(cf_stack), cf_steps.kv_newest_canary(cf_stack),
                cf_steps.r2_newest_canary(cf_stack)]  # fmt: skip
    cf_steps.rpo(run, written, survived)

    assert restored.set_id == newer.set_id != older.set_id
    assert run.passed, run.failures()
