"""Sabotaged Cloudflare recoveries fail the drill, with a message that names the cause."""

from datetime import UTC, datetime, timedelta

import pytest

from harness.cloudflare import d1, kv_sets, r2_sets, stack
from harness.cloudflare.targets import CLOUDFLARE_PROFILES
from harness.drill import cf_dataset, cf_steps
from harness.drill.run import DrillRun
from harness.storage.local import LocalObjectStore


def _run():
    return DrillRun(scenario="sabotage", parameters={}, targets=CLOUDFLARE_PROFILES["production"])


@pytest.fixture
def store(tmp_path):
    return LocalObjectStore(tmp_path / "backups")


@pytest.fixture
def seeded(cf_stack, tmp_path):
    app = cf_dataset.seed(cf_stack.wrangler, cf_stack.kv, cf_stack.bucket, workdir=tmp_path)
    return cf_stack, app


def test_restoring_the_stores_to_different_dates_fails_the_cross_checks(seeded, store, tmp_path):
    cf, app = seeded
    w = cf.wrangler
    kw = {"database": "DB", "kv": cf.kv, "bucket": cf.bucket, "store": store}
    older = stack.back_up_stack(w, **kw, workdir=tmp_path / "a",
                                now=datetime.now(UTC) - timedelta(days=1))  # fmt: skip
    cf_dataset.seed(w, cf.kv, cf.bucket, workdir=tmp_path, app=app)
    newer = stack.back_up_stack(w, **kw, workdir=tmp_path / "b")
    run = _run()
    with run.phase("disaster"):
        cf_steps.destroy_stack(cf)
    cf.bridge.start()
    fresh = cf.project.add_spare_d1("machipoke-db-restored")
    db = d1.restore(w, store, newer.set_id, "DB", into=fresh.name, workdir=tmp_path / "r")
    cf.project.rebind_d1("DB", fresh.name)
    keys = kv_sets.restore(cf.kv, store, newer.set_id, workdir=tmp_path / "r")
    objects = r2_sets.restore(cf.bucket, store, older.set_id, workdir=tmp_path / "r")  # sabotage
    mixed = stack.StackRestore(newer.set_id, db, keys, objects, 0.0)
    run.add(mixed.checks)
    run.add(cf_dataset.cross_check(w, cf.kv, cf.bucket))
    run.verified()
    run.rpo_seconds = 0.0
    assert not run.passed
    failures = run.failures()
    assert f"one backup date: D1 {newer.set_id}, KV {newer.set_id}, R2 {older.set_id}" in failures
    assert "d1 image keys in r2: 30 of 60 spots reference images missing from R2" in failures


def test_a_kv_restore_that_drops_the_binary_value_fails_naming_it(seeded, store, tmp_path):
    cf, _ = seeded
    backup = kv_sets.back_up(cf.kv, store, workdir=tmp_path / "a")
    cf_steps.lose_kv(cf)
    entries = kv_sets.load_set(store, backup.manifest.set_id, "SESSIONS", tmp_path / "r")
    cf.kv.write_many(e for e in entries if e.key != b"blob:placeholder")  # sabotage
    run = _run()
    run.add(kv_sets.compare_entries(entries, cf.kv.read_all()))
    assert not run.passed
    total = len(entries)
    assert f"kv keys: {total - 1} of {total} keys present; missing blob:placeholder" in (
        run.failures()
    )


def test_restoring_a_backup_taken_after_the_damage_fails_naming_the_lost_table(
    seeded, store, tmp_path
):
    cf, _ = seeded
    w = cf.wrangler
    reference = d1.fingerprint(w, "DB", tmp_path)
    cf_steps.corrupt_d1(cf)
    late = d1.back_up(w, ["DB"], store, workdir=tmp_path / "a")  # sabotage: after the damage
    fresh = cf.project.add_spare_d1("machipoke-db-restored")
    restored = d1.restore(w, store, late.manifest.set_id, "DB", into=fresh.name,
                          workdir=tmp_path / "r")  # fmt: skip
    assert restored.ok  # it is a faithful copy of the damaged database...
    run = _run()
    run.add(d1.compare_fingerprints(reference, restored.fingerprint))  # ...not of the reference
    assert not run.passed
    failures = run.failures()
    assert "d1 table favorites: table is missing" in failures
    assert "d1 schema: missing: table favorites" in failures
    reviews = reference.by_name()["reviews"].rows
    assert f"d1 table reviews: {restored.fingerprint.by_name()['reviews'].rows} rows, " \
           f"reference had {reviews}" in failures  # fmt: skip


def test_an_r2_restore_that_trusts_keys_alone_leaves_the_overwritten_image(seeded, store, tmp_path):
    cf, _ = seeded
    backup = r2_sets.back_up(cf.bucket, store, workdir=tmp_path / "a")
    cf_steps.lose_r2_objects(cf)
    present = {o.key for o in cf.bucket.list_objects()}
    for entry in backup.manifest.entries:  # sabotage: "restore what is missing" by key only
        if entry.key not in present:
            path = tmp_path / "obj"
            path.write_bytes(store.get_bytes(backup.manifest.stored_key(entry)))
            cf.bucket.upload(entry.key, path, content_type=entry.content_type,
                             metadata=dict(entry.metadata))  # fmt: skip
    run = _run()
    run.add(r2_sets.verify(cf.bucket, backup.manifest, workdir=tmp_path / "v"))
    assert not run.passed
    victim = sorted(k for k in present if k.startswith("spots/"))[0]
    assert f"r2 sha256: 1 objects differ from the backup: {victim}" in run.failures()
