"""Buckets the harness creates: in the endpoint's region, and removed after use."""

from datetime import UTC, datetime, timedelta

import pytest

from harness.config import S3Target
from harness.infra.janitor import remove_bucket
from harness.infra.s3.moto import MotoServer
from harness.infra.s3.seaweed import SeaweedServer
from harness.storage.s3 import S3ObjectStore


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module", params=["moto", "seaweedfs"])
def s3(request, moto, tmp_path_factory):
    if request.param == "moto":
        yield moto
        return
    with SeaweedServer(tmp_path_factory.mktemp("weed")) as server:
        yield server


@pytest.mark.parametrize("object_lock", [False, True], ids=["plain", "object-lock"])
def test_a_bucket_outside_us_east_1_is_created_in_its_region(moto, object_lock):
    target = S3Target(moto.endpoint_url, "AKIDREGIONTEST", "region-test-secret", region="eu-west-1")
    store = S3ObjectStore(target, f"drill-region-{int(object_lock)}")
    store.create_bucket(object_lock=object_lock)
    location = store.client.get_bucket_location(Bucket=store.bucket)["LocationConstraint"]
    assert location == "eu-west-1"


def test_a_bucket_in_us_east_1_sends_no_location_constraint(moto):
    # S3 rejects LocationConstraint=us-east-1 (InvalidLocationConstraint).
    target = S3Target(moto.endpoint_url, "AKIDREGIONTEST", "region-test-secret")
    store = S3ObjectStore(target, "drill-us-east-1")
    store.create_bucket()
    assert store.client.get_bucket_location(Bucket=store.bucket).get("LocationConstraint") in (
        None,
        "",
        "us-east-1",
    )


def _store(server, name, *, object_lock=False):
    store = S3ObjectStore(server.target(), name)
    store.create_bucket(object_lock=object_lock)
    return store


def _put_locked(store, mode):
    # S3 wants a checksum on a PUT under retention; S3ObjectStore.put_locked sends none.
    store.client.put_object(
        Bucket=store.bucket,
        Key="k",
        Body=b"v",
        ObjectLockMode=mode,
        ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=1),
        ChecksumAlgorithm="SHA256",
    )


def _exists(store):
    return store.bucket in {b["Name"] for b in store.client.list_buckets()["Buckets"]}


def test_removing_a_bucket_takes_every_version_and_delete_marker(s3):
    store = _store(s3, "drill-janitor-versions", object_lock=True)  # lockable => versioned
    for i in range(3):
        store.put_bytes("k", b"v%d" % i)
    store.delete("k")
    store.put_bytes("other", b"x")
    result = remove_bucket(store)
    assert result.removed, result.detail
    assert not _exists(store)


def test_a_bucket_under_governance_retention_is_removed_by_bypassing_it(s3):
    store = _store(s3, "drill-janitor-governance", object_lock=True)
    _put_locked(store, "GOVERNANCE")
    assert remove_bucket(store).removed
    assert not _exists(store)


def test_a_bucket_under_compliance_retention_stays_and_says_why(s3):
    store = _store(s3, "drill-janitor-compliance", object_lock=True)
    _put_locked(store, "COMPLIANCE")
    result = remove_bucket(store)
    assert not result.removed
    assert result.versions_left == 1
    assert "retention" in result.detail
    assert _exists(store)
