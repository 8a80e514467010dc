"""Every object store passes the same assertions: a set behaves the same wherever it lives.

A new store joins by adding a parameter to the ``store`` fixture (see harness/storage/base.py).
S3 runs against a real moto server over HTTP.
"""

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from harness.errors import (
    ConfigError,
    ManifestError,
    ObjectNotFound,
    StorageError,
    UnsafeObjectError,
)
from harness.infra.s3.moto import MotoServer
from harness.sets.location import parse_location
from harness.sets.manifest import MANIFEST, Manifest, describe_artifacts
from harness.sets.publish import fetch, publish
from harness.storage.base import ObjectStore
from harness.storage.local import LocalObjectStore
from harness.storage.s3 import S3ObjectStore


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        yield server


_buckets = iter(range(10**6))


@pytest.fixture(params=["local", "s3"])
def kind(request):
    return request.param


@pytest.fixture
def store(kind, request, tmp_path):
    if kind == "local":
        return LocalObjectStore(tmp_path / "store")
    s3 = S3ObjectStore(request.getfixturevalue("moto").target(), f"conf-{next(_buckets)}")
    s3.create_bucket()
    return s3


def _location(store, prefix):
    """The location of a set at ``prefix`` in ``store`` (its own store: ``.store()``)."""
    if isinstance(store, LocalObjectStore):
        return parse_location(str(store.root / prefix))
    return parse_location(f"s3://{store.bucket}/{prefix}", s3=store.target)


def test_every_store_satisfies_the_protocol(store):
    assert isinstance(store, ObjectStore)


def test_bytes_and_files_round_trip(store, tmp_path):
    store.put_bytes("a/b.bin", b"\x00bytes\xff")
    assert store.get_bytes("a/b.bin") == b"\x00bytes\xff"
    source = tmp_path / "in.bin"
    source.write_bytes(bytes(range(256)) * 64)
    store.put_file("a/c.bin", source)
    out = tmp_path / "out" / "deep" / "c.bin"  # parents are made
    store.get_file("a/c.bin", out)
    assert out.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["c.bin"], "temp files left behind"
    store.put_bytes("a/b.bin", b"replaced")
    assert store.get_bytes("a/b.bin") == b"replaced"


def test_list_is_sorted_by_key_and_bounded_by_the_prefix(store):
    for key in ["set/b", "set/a/x", "set-2/a", "other/set/c"]:
        store.put_bytes(key, key.encode())
    listed = store.list("set/")
    assert [o.key for o in listed] == ["set/a/x", "set/b"]
    assert [o.size for o in listed] == [len("set/a/x"), len("set/b")]
    assert [o.key for o in store.list()] == ["other/set/c", "set-2/a", "set/a/x", "set/b"]
    assert store.list("nothing/") == []


def test_listing_returns_every_key_past_one_page(store):
    keys = [f"many/{i:04d}" for i in range(1003)]  # S3 lists 1000 keys a page
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: store.put_bytes(k, b"."), keys))
    assert [o.key for o in store.list("many/")] == keys


def test_a_missing_object_is_object_not_found_and_leaves_no_file(store, tmp_path):
    with pytest.raises(ObjectNotFound):
        store.get_bytes("no/such/key")
    with pytest.raises(ObjectNotFound):
        store.get_file("no/such/key", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    store.delete("no/such/key")  # a no-op


@pytest.mark.parametrize(
    "key", ["sets/été 2026/ファイル name.dump", "with space/and+plus=&.bin", "emoji/🗄️.json"]
)
def test_keys_with_unicode_and_spaces_round_trip(store, tmp_path, key):
    store.put_bytes(key, key.encode())
    assert [o.key for o in store.list(key.split("/")[0] + "/")] == [key]
    assert store.get_bytes(key) == key.encode()
    store.get_file(key, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == key.encode()
    store.delete(key)
    assert store.list(key.split("/")[0] + "/") == []


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../escape", "/etc/passwd", "a//b", "dir/", "", "a\\b", "nul\x00"]
)
def test_unsafe_keys_are_refused_before_any_io(store, tmp_path, key):
    source = tmp_path / "in.bin"
    source.write_bytes(b"x")
    for attempt in (
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_file(key, source),
        lambda: store.get_bytes(key),
        lambda: store.get_file(key, tmp_path / "out"),
        lambda: store.delete(key),
    ):
        with pytest.raises(UnsafeObjectError, match="invalid object key"):
            attempt()
    assert store.list() == []
    assert not (tmp_path / "escape").exists()


# -- sets through the interface ---------------------------------------------------------


def _staged_set(staging):
    (staging / "db").mkdir(parents=True)
    (staging / "db" / "app.dump").write_bytes(b"PGDMP" + bytes(range(200)))
    (staging / "globals").mkdir()
    (staging / "globals" / "roles.json").write_text("{}")
    return Manifest(
        created_at="2026-11-22T03:00:00+00:00",
        dbname="app",
        source_server_version="15.8",
        source_major=15,
        system_identifier=None,
        wal_lsn=None,
        dump_format="custom",
        tools={},
        artifacts=describe_artifacts(
            staging, {"db/app.dump": "dump-custom", "globals/roles.json": "globals"}
        ),
        tables=(),
        sequences=(),
    )


def test_publish_writes_the_manifest_last_and_never_overwrites(store, tmp_path):
    location = _location(store, "sets/one")
    manifest = _staged_set(tmp_path / "staging")
    (tmp_path / "staging" / "globals" / "roles.json").unlink()  # the second upload fails
    with pytest.raises(StorageError):
        publish(tmp_path / "staging", manifest, location)
    assert location.store().list(location.key("")) == [], "a failed publish left objects"
    with pytest.raises(ObjectNotFound, match="not a \\(complete\\) backup set"):
        fetch(location, tmp_path / "work")

    manifest = _staged_set(tmp_path / "staging-2")
    publish(tmp_path / "staging-2", manifest, location)
    keys = [o.key for o in location.store().list(location.key(""))]
    assert keys == [location.key(p) for p in ["db/app.dump", "globals/roles.json", MANIFEST]]
    fetched = fetch(location, tmp_path / "work")
    assert fetched.manifest == manifest
    assert (fetched.root / "db" / "app.dump").read_bytes().startswith(b"PGDMP")
    assert fetched.extra == ()
    with pytest.raises(ConfigError, match="never overwritten"):
        publish(tmp_path / "staging-2", manifest, location)


def test_objects_without_a_manifest_are_an_incomplete_set(store, tmp_path):
    location = _location(store, "sets/half")
    location.store().put_bytes(location.key("db/app.dump"), b"PGDMP")
    with pytest.raises(ManifestError, match="incomplete set"):
        fetch(location, tmp_path / "work")


def test_fetch_downloads_nothing_outside_its_directory(store, tmp_path):
    location = _location(store, "sets/forged")
    publish(tmp_path / "staging", _staged_set(tmp_path / "staging"), location)
    set_store = location.store()
    body = json.loads(set_store.get_bytes(location.key(MANIFEST)))
    del body["digest"]
    body["artifacts"][0]["path"] = "../../../escape.dump"
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    body["digest"] = hashlib.sha256(canonical).hexdigest()
    set_store.put_bytes(location.key(MANIFEST), json.dumps(body).encode())
    work = tmp_path / "deep" / "er" / "work"
    with pytest.raises(ManifestError, match=r"'\.\.' segment"):
        fetch(location, work)
    assert not list(tmp_path.rglob("escape.dump"))
    assert not work.exists() or list(work.iterdir()) == []


def test_features_a_store_lacks_are_refused_clearly(tmp_path):
    store = LocalObjectStore(tmp_path)
    with pytest.raises(ConfigError, match="Object Lock needs an s3:// location"):
        store.put_bytes("a", b"x", lock_until=datetime.now(UTC))
    with pytest.raises(ConfigError, match="keeps no versions"):
        store.list(as_of=datetime.now(UTC))


def test_publish_refuses_a_manifest_it_would_not_read(store, tmp_path):
    location = _location(store, "sets/bad")
    manifest = _staged_set(tmp_path / "staging")
    evil = replace(manifest.artifacts[0], path="../../outside.dump")
    with pytest.raises(ManifestError, match=r"'\.\.' segment"):
        publish(tmp_path / "staging", replace(manifest, artifacts=(evil,)), location)
    assert location.store().list(location.key("")) == []


def test_an_oversized_manifest_is_refused_before_it_is_read(store, tmp_path, monkeypatch):
    location = _location(store, "sets/big")
    publish(tmp_path / "staging", _staged_set(tmp_path / "staging"), location)
    monkeypatch.setattr("harness.sets.publish.MAX_MANIFEST_BYTES", 100)
    with pytest.raises(ManifestError, match="more than the 100 a manifest may have"):
        fetch(location, tmp_path / "work")
