"""Workers KV loss: every key of the sessions namespace deleted (C3).

The weekly KV backup reads the whole namespace with three wrangler calls (key list with
expirations and metadata, bulk get, one exact read for the value that is not UTF-8) into the
shared JSON Lines export, stored with its manifest. After the loss the export is proven
(manifest SHA-256, its own trailer) and written back in bulk; every key's value, metadata and
expiration is read back and compared, and every session still belongs to a D1 user.
"""

import pytest

from harness.cloudflare import kv_sets
from harness.drill import cf_dataset, cf_steps

pytestmark = pytest.mark.drill


def test_cf_kv_loss(cf_stack, cf_drill_run, object_store, drill_config, drill_workdir):
    run, w, kv = cf_drill_run, cf_stack.wrangler, cf_stack.kv
    with run.phase("seed", "spots, users in D1; sessions and page cache in KV; images in R2"):
        cf_dataset.seed(w, kv, cf_stack.bucket, workdir=drill_workdir, scale=drill_config.scale)
        cf_steps.kv_canary(cf_stack)
    with run.phase("backup", "key list + bulk get into the JSON Lines export"):
        backup = kv_sets.back_up(kv, object_store, workdir=drill_workdir)
        cf_steps.record_set(run, "KV", backup.manifest, object_store.location)
        run.facts["KV backup"] = (
            f"{len(backup.entries)} keys with {backup.wrangler_calls} wrangler calls"
        )
    last_write = cf_steps.kv_canary(cf_stack)

    with run.phase("disaster", "every key of the namespace deleted"):
        run.facts["disaster"] = cf_steps.lose_kv(cf_stack)
    with run.phase("detect", "the namespace against the backup's keys"):
        now = kv.read_all()
        run.add([cf_steps.detected("kv loss", kv_sets.compare_entries(backup.entries, now))])
    with run.phase("restore", "export proven, then bulk put"):
        restored = kv_sets.restore(kv, object_store, backup.manifest.set_id, workdir=drill_workdir)
        run.facts["KV restore"] = (
            f"{restored.written} keys written, {restored.expired} expired since the backup, "
            f"{restored.wrangler_calls} wrangler calls"
        )
    with run.phase("verify", "every key read back; sessions of existing users"):
        run.add(restored.checks)
        run.add(cf_dataset.cross_check(w, kv, cf_stack.bucket))
        run.verified()
    cf_steps.rpo(run, [last_write], [cf_steps.kv_newest_canary(cf_stack)])

    assert restored.written == len(backup.entries)
    assert run.passed, run.failures()
