"""The lean path of bucket copies against a real S3 server: same results, boto3 for the rest."""

import base64
import hashlib
import socket
import tracemalloc

import pytest
from botocore.exceptions import ClientError

from harness.errors import ObjectNotFound
from harness.objects.backup import backup_bucket
from harness.objects.copy import Copier, CopyOptions
from harness.objects.lean import LeanS3
from harness.objects.restore import verify_set

BIG = 17 << 20  # above the multipart threshold: boto3 streams it in parts
OBJECT_CALLS = ("GetObject", "PutObject", "CopyObject")


def _count_object_calls(*buckets):
    """Count the boto3 requests that read or write one object (the events of a real client)."""
    seen = []
    for bucket in buckets:
        for name in OBJECT_CALLS:
            bucket.client.meta.events.register(
                f"before-call.s3.{name}", lambda model, **_: seen.append(model.name)
            )
    return seen


def _put(bucket, key, body, **kw):
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body, **kw)


def _sha(data):
    return hashlib.sha256(data).digest()


@pytest.mark.parametrize("server_side", [True, False], ids=["server-side", "streamed"])
def test_small_objects_are_copied_without_a_boto3_request(bucket_factory, server_side):
    source, backups = bucket_factory(), bucket_factory()
    for i in range(5):
        _put(source, f"photos/é {i}.jpg", bytes([i]) * 5000, ContentType="image/jpeg")
    _put(source, "video/big.bin", b"v" * BIG)
    calls = _count_object_calls(source, backups)
    options = CopyOptions(server_side=server_side, workers=3)
    result = backup_bucket(source, backups, set_id="20250101", options=options)
    assert result.copied == 6
    # Only the big object's read (then parts or a copy) and the manifest went through boto3.
    assert sorted(calls) == ["GetObject", "PutObject"]
    assert verify_set(backups, "images", "20250101").ok
    entry = result.manifest.by_key()["photos/é 3.jpg"]
    assert (entry.size, entry.content_type) == (5000, "image/jpeg")


def test_without_the_lean_path_every_object_goes_through_boto3(bucket_factory):
    source, backups = bucket_factory(), bucket_factory()
    for i in range(3):
        _put(source, f"k{i}", b"x" * 100)
    calls = _count_object_calls(source, backups)
    options = CopyOptions(server_side=False, lean=False)
    backup_bucket(source, backups, set_id="20250101", options=options)
    assert sorted(calls) == ["GetObject"] * 3 + ["PutObject"] * 4


def test_lean_requests_read_and_write_what_boto3_does(bucket_factory):
    bucket = bucket_factory()
    lean = LeanS3.for_target(bucket.target)
    assert lean is not None
    try:
        meta = {"owner": "user-1", "note": "a b"}
        assert lean.put(
            bucket.name,
            "dir/ü x+y.txt",
            b"hello",
            sha256=_sha(b"hello"),
            content_type="text/plain",
            metadata=meta,
        )
        assert lean.put(bucket.name, "empty", b"", sha256=_sha(b""), content_type=None, metadata={})
        head = bucket.client.get_object(Bucket=bucket.name, Key="dir/ü x+y.txt")
        assert (head["Body"].read(), head["ContentType"], head["Metadata"]) == (
            b"hello",
            "text/plain",
            meta,
        )
        assert bucket.client.get_object(Bucket=bucket.name, Key="empty")["Body"].read() == b""

        _put(bucket, "from boto3", b"data", ContentType="image/png", Metadata={"n": "7"})
        fetched = lean.get(bucket.name, "from boto3", limit=100)
        head = bucket.client.head_object(Bucket=bucket.name, Key="from boto3")
        assert fetched is not None
        assert (fetched.body, fetched.content_type, fetched.metadata, fetched.etag) == (
            b"data",
            "image/png",
            {"n": "7"},
            head["ETag"].strip('"'),
        )
    finally:
        lean.close()


def test_lean_requests_leave_every_failure_to_boto3(bucket_factory):
    bucket = bucket_factory()
    _put(bucket, "five", b"12345")
    lean = LeanS3.for_target(bucket.target)
    assert lean is not None
    try:
        assert lean.get(bucket.name, "absent", limit=100) is None
        assert lean.get(bucket.name, "five", limit=4) is None  # bigger than the limit
        assert lean.get("no-such-bucket-here", "five", limit=100) is None
        # Not Latin-1: http.client cannot send it; boto3 must.
        assert not lean.put(
            bucket.name, "k", b"x", sha256=_sha(b"x"), content_type=None, metadata={"n": "東京"}
        )
        assert lean.get(bucket.name, "five", limit=100) is not None  # still usable
    finally:
        lean.close()
    copier = Copier(bucket, bucket_factory(), CopyOptions())
    try:
        with pytest.raises(ObjectNotFound):
            copier.copy("absent", "absent", size_hint=5)
    finally:
        copier.close()


def test_a_connection_the_server_dropped_is_replaced(bucket_factory):
    bucket = bucket_factory()
    _put(bucket, "k", b"value")
    lean = LeanS3.for_target(bucket.target)
    assert lean is not None
    try:
        assert lean.get(bucket.name, "k", limit=100) is not None
        conn, _ = lean._connection()
        if conn.sock is None:  # a server that closes after every answer (moto)
            conn.connect()
        assert conn.sock is not None
        conn.sock.shutdown(socket.SHUT_RDWR)  # as a server closing an idle connection
        fetched = lean.get(bucket.name, "k", limit=100)
        assert fetched is not None
        assert fetched.body == b"value"
    finally:
        lean.close()


def test_a_store_that_checks_checksums_refuses_bytes_that_are_not_the_ones_hashed(
    bucket_factory,
):
    bucket = bucket_factory()
    try:
        wrong = base64.b64encode(_sha(b"good")).decode()
        _put(bucket, "probe", b"evil", ChecksumSHA256=wrong)
    except ClientError:
        pass  # the store checks: so must the lean path
    else:
        pytest.skip("this S3 server does not check SHA-256 checksums (moto)")
    lean = LeanS3.for_target(bucket.target)
    assert lean is not None
    try:
        assert not lean.put(
            bucket.name, "k", b"evil", sha256=_sha(b"good"), content_type=None, metadata={}
        )
        assert lean.put(
            bucket.name, "k", b"good", sha256=_sha(b"good"), content_type=None, metadata={}
        )
    finally:
        lean.close()
    assert [o.key for o in bucket.list()] == ["k"]


def test_a_big_object_is_streamed_one_part_at_a_time(bucket_factory, drill_config):
    if drill_config.s3_backend == "moto":
        pytest.skip("moto serves from this process: its copy of the object would count")
    source, backups = bucket_factory(), bucket_factory()
    _put(source, "video/big.bin", bytes(range(256)) * (160 << 10))  # 40 MiB
    part = CopyOptions().transfer.multipart_chunksize
    tracemalloc.start()
    try:
        result = backup_bucket(
            source, backups, set_id="20250101", options=CopyOptions(server_side=False)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.copied_bytes == 40 << 20
    # One part in a reused buffer, plus the pieces it is read in: not the object, not a
    # part read whole and then copied.
    assert peak < part + (3 << 20), f"{peak / 2**20:.1f} MiB traced for {part >> 20} MiB parts"
