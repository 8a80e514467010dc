"""R2 through the bridge Worker in local mode: listing, transfers, backup and restore by hash."""

import os

import pytest

from harness.cloudflare import r2_sets
from harness.cloudflare.bridge import _group_alive
from harness.cloudflare.r2 import BridgeBucket, S3ApiBucket
from harness.errors import ConfigError, ObjectNotFound, RestoreError
from harness.objects.bucket import Bucket
from harness.objects.manifest import stored_key
from harness.storage.local import LocalObjectStore


@pytest.fixture
def bucket(cf_project, tmp_path):
    cf_project.add_r2("IMAGES", "images")
    with cf_project.bridge(workdir=tmp_path / "bridge") as bridge:
        yield BridgeBucket(bridge, "images")


@pytest.fixture
def store(tmp_path):
    return LocalObjectStore(tmp_path / "backups")


def put(bucket, tmp_path, key, data, **meta):
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    bucket.upload(key, path, content_type=meta.pop("content_type", None), metadata=meta)


def test_the_bridge_lists_past_a_thousand_objects_and_keeps_metadata(bucket, tmp_path):
    for i in range(1005):
        put(bucket, tmp_path, f"many/{i:04d}", b"x")
    put(bucket, tmp_path, "spots/ü é/photo 1.jpg", os.urandom(70_000), content_type="image/jpeg",
        spot="s1")  # fmt: skip
    listed = bucket.list_objects()
    assert len(listed) == 1006
    photo = next(o for o in listed if o.key == "spots/ü é/photo 1.jpg")
    assert (photo.size, photo.content_type, photo.metadata) == (
        70_000,
        "image/jpeg",
        {"spot": "s1"},
    )
    with pytest.raises(ObjectNotFound):
        bucket.download("nowhere", tmp_path / "x")


def test_the_objects_the_wrangler_cli_writes_are_the_bridges(cf_project, bucket, tmp_path):
    source = tmp_path / "cli.bin"
    source.write_bytes(os.urandom(3000))
    w = cf_project.wrangler
    w.run(["r2", "object", "put", "images/from-cli.bin", "--file", source, w.mode_flag])
    got = bucket.download("from-cli.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    assert got.size == 3000


def test_backup_restore_and_verify_by_hash(bucket, store, tmp_path):
    for i in range(12):
        put(bucket, tmp_path, f"spots/s{i}/p.jpg", os.urandom(2000 + i), content_type="image/jpeg",
            spot=f"s{i}")  # fmt: skip
    backup = r2_sets.back_up(bucket, store, workdir=tmp_path / "w1")
    assert len(backup.manifest.entries) == 12
    keys = [e.key for e in backup.manifest.entries]
    bucket.delete_many(keys[:5])
    put(bucket, tmp_path, keys[6], b"ransom", content_type="application/octet-stream")
    damage = {c.name: c for c in r2_sets.verify(bucket, backup.manifest, workdir=tmp_path / "v")}
    assert damage["r2 objects"].detail.startswith("7 of 12 present; missing spots/s0/p.jpg")
    assert not damage["r2 sha256"].ok
    assert keys[6] in damage["r2 sha256"].detail
    restored = r2_sets.restore(bucket, store, backup.manifest.set_id, workdir=tmp_path / "w2")
    assert (restored.uploaded, restored.unchanged) == (6, 6)
    assert restored.ok, restored.checks


def test_a_stored_object_that_changed_is_never_restored(bucket, store, tmp_path):
    put(bucket, tmp_path, "a.jpg", b"original", content_type="image/jpeg")
    backup = r2_sets.back_up(bucket, store, workdir=tmp_path / "w1")
    bucket.delete_many(["a.jpg"])
    store.put_bytes(stored_key("images", backup.manifest.set_id, "a.jpg"), b"replaced")
    with pytest.raises(RestoreError, match=r"verify-artifact: a\.jpg in set images/.* not what"):
        r2_sets.restore(bucket, store, backup.manifest.set_id, workdir=tmp_path / "w2")
    assert bucket.list_objects() == []


def test_stopping_the_bridge_leaves_no_process_behind(cf_project, tmp_path):
    cf_project.add_r2("IMAGES", "images")
    bridge = cf_project.bridge(workdir=tmp_path / "bridge").start()
    pid = bridge._proc.pid
    bridge.stop()
    assert not _group_alive(pid)


def test_the_s3_api_path_for_remote_buckets_backs_up_and_restores(
    object_store_factory, s3_target, tmp_path
):
    # R2 on an account is reached through its S3 API: the same code against this endpoint.
    source = S3ApiBucket(Bucket(s3_target, object_store_factory().bucket))
    backups = object_store_factory()
    for i in range(3):
        put(source, tmp_path, f"spots/s{i}.jpg", os.urandom(500), content_type="image/jpeg",
            spot=f"s{i}")  # fmt: skip
    backup = r2_sets.back_up(source, backups, workdir=tmp_path / "w1")
    assert {e.metadata["spot"] for e in backup.manifest.entries} == {"s0", "s1", "s2"}
    bucket_store = source._bucket.store()
    bucket_store.delete("spots/s1.jpg")
    restored = r2_sets.restore(source, backups, backup.manifest.set_id, workdir=tmp_path / "w2")
    assert (restored.uploaded, restored.unchanged) == (1, 2)
    assert restored.ok, restored.checks


def test_remote_r2_names_every_missing_variable(monkeypatch):
    for name in ("CLOUDFLARE_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "key-id")
    with pytest.raises(ConfigError, match="set CLOUDFLARE_ACCOUNT_ID, R2_SECRET_ACCESS_KEY"):
        S3ApiBucket.from_environment("images")
