"""Bucket backups against a real S3 server: copies, incremental sets, locks, sabotage."""

from datetime import UTC, datetime, timedelta

import pytest

from harness.config import PROFILES
from harness.drill.run import DrillRun
from harness.errors import ConfigError, RestoreError
from harness.objects.backup import backup_bucket
from harness.objects.copy import CopyOptions, Lock
from harness.objects.restore import choose_set, restore_objects, verify_bucket, verify_set

BIG = 17 << 20  # above the multipart threshold: streamed in parts


def _fill(bucket, count=12):
    for i in range(count):
        bucket.client.put_object(
            Bucket=bucket.name,
            Key=f"photos/ä {i}.jpg",
            Body=bytes([i]) * (1000 + i),
            ContentType="image/jpeg",
            Metadata={"owner": f"user-{i}"},
        )


@pytest.mark.parametrize("server_side", [True, False], ids=["server-side", "streamed"])
def test_backup_then_restore_keeps_bytes_types_and_metadata(bucket_factory, server_side):
    source, backups, target = bucket_factory(), bucket_factory(), bucket_factory()
    _fill(source)
    source.client.put_object(Bucket=source.name, Key="video/big.bin", Body=b"v" * BIG)
    options = CopyOptions(server_side=server_side, workers=4)
    result = backup_bucket(source, backups, set_id="20250101", options=options)
    assert (result.copied, result.server_side) == (13, server_side)
    assert verify_set(backups, "images", "20250101").ok
    restored = restore_objects(backups, "images", "20250101", target, options=options)
    assert restored.comparison.ok, restored.comparison.describe()
    head = target.client.head_object(Bucket=target.name, Key="photos/ä 3.jpg")
    assert (head["ContentType"], head["Metadata"]) == ("image/jpeg", {"owner": "user-3"})


def test_incremental_sets_copy_only_what_changed(bucket_factory):
    source, backups, target = bucket_factory(), bucket_factory(), bucket_factory()
    _fill(source)
    backup_bucket(source, backups, set_id="20250101")
    source.client.put_object(Bucket=source.name, Key="photos/ä 2.jpg", Body=b"new")
    second = backup_bucket(source, backups, set_id="20250102")
    assert (second.copied, second.reused, second.previous) == (1, 11, "20250101")
    entry = second.manifest.by_key()["photos/ä 5.jpg"]
    assert entry.stored_in == "20250101"
    assert choose_set(backups, "images", "20250102") == "20250102"
    restored = restore_objects(backups, "images", "20250102", target)
    assert restored.comparison.ok
    got = target.client.get_object(Bucket=target.name, Key="photos/ä 2.jpg")["Body"].read()
    assert got == b"new"
    with pytest.raises(ConfigError, match="exists already"):
        backup_bucket(source, backups, set_id="20250102")


def test_everything_written_is_under_object_lock(bucket_factory):
    source, backups = bucket_factory(), bucket_factory(object_lock=True)
    _fill(source, 2)
    until = datetime.now(UTC) + timedelta(days=1)
    result = backup_bucket(
        source, backups, set_id="20250101", options=CopyOptions(lock=Lock("GOVERNANCE", until))
    )
    for key in [result.manifest_key, "backups/images/20250101/photos/ä 1.jpg"]:
        state = backups.lock_state(key)
        assert state.mode == "GOVERNANCE", key
        assert state.held(datetime.now(UTC)), key


def test_an_object_changed_after_the_backup_fails_verification(bucket_factory):
    source, backups, target = bucket_factory(), bucket_factory(), bucket_factory()
    _fill(source, 3)
    backup_bucket(source, backups, set_id="20250101")
    backups.client.put_object(
        Bucket=backups.name, Key="backups/images/20250101/photos/ä 1.jpg", Body=b"x" * 1001
    )  # same size, other bytes
    found = verify_set(backups, "images", "20250101")
    assert found.changed == (("photos/ä 1.jpg", "SHA-256 differs"),)
    run = DrillRun("sabotage", {}, PROFILES["production"])
    restored = restore_objects(backups, "images", "20250101", target)
    run.add(restored.comparison.checks())
    assert not run.passed
    assert "every object intact: 2 match; changed: 'photos/ä 1.jpg' (SHA-256 differs)" in (
        run.failures()
    )


def test_a_missing_object_stops_the_restore_before_it_writes(bucket_factory):
    source, backups, target = bucket_factory(), bucket_factory(), bucket_factory()
    _fill(source, 3)
    result = backup_bucket(source, backups, set_id="20250101")
    backups.delete("backups/images/20250101/photos/ä 0.jpg")
    with pytest.raises(RestoreError, match="check: 1 object\\(s\\) of set images/20250101 are"):
        restore_objects(backups, "images", "20250101", target)
    assert target.list() == []
    assert verify_set(backups, "images", "20250101").missing == ("photos/ä 0.jpg",)
    assert not verify_bucket(target, result.manifest).ok
