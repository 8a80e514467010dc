"""Object storage loss: the image bucket is emptied and some images overwritten.

The images are backed up into a dated set of a backup bucket under Object Lock, the set is
verified without restoring it, then the disaster strikes: every object deleted, a few
overwritten with junk. The set of the backup's date is restored into the bucket and every
object is read back and hashed against the manifest; an image written after the backup is
the data lost, and the RPO measures it.
"""

from datetime import UTC, datetime, timedelta

import pytest

from harness.drill import stack
from harness.objects.backup import backup_bucket
from harness.objects.copy import CopyOptions, Lock
from harness.objects.restore import choose_set, restore_objects, verify_bucket, verify_set
from harness.verify.checks import CheckResult

pytestmark = pytest.mark.drill


def test_object_storage_loss(bucket_factory, drill_run):
    images, backups = bucket_factory(), bucket_factory(object_lock=True)
    with drill_run.phase("seed", "60 images of 4-64 KiB with content types and metadata"):
        stack.seed_images(None, images, count=60)
        stack.write_canaries(images, None)
    lock = Lock("GOVERNANCE", datetime.now(UTC) + timedelta(days=1))
    with drill_run.phase("backup", "parallel copy into a dated set, GOVERNANCE lock"):
        backup = backup_bucket(images, backups, kind="images", options=CopyOptions(lock=lock))
        stack.record_object_set(drill_run, backup.manifest, backup.manifest_key)
    set_id = backup.manifest.set_id
    drill_run.add(verify_set(backups, "images", set_id).checks())  # checked without restoring
    last_write = stack.write_canaries(images, None)  # after the backup: this one is lost

    with drill_run.phase("disaster", "bucket emptied, 5 objects overwritten"):
        deleted, overwritten = stack.empty_bucket(images, overwrite=5)
    with drill_run.phase("detect"):
        found = verify_bucket(images, backup.manifest)
        drill_run.add(
            [CheckResult("loss detected", ok=not found.ok, critical=True, detail=found.describe())]
        )
    with drill_run.phase("restore", f"set images/{set_id} into the emptied bucket"):
        chosen = choose_set(backups, "images", set_id[:8])
        restored = restore_objects(backups, "images", chosen, images)
    with drill_run.phase("verify"):
        drill_run.add(restored.comparison.checks())
        drill_run.verified()
    stack.record_store_rpo(drill_run, last_write, stack.newest_canary(images))

    assert (deleted, overwritten) == (57, 5)  # 60 images and 2 canaries
    assert drill_run.passed, drill_run.failures()
