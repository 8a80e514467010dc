import os
import stat

import pytest

from harness.errors import ObjectNotFound, StorageError, UnsafeObjectError
from harness.storage.base import ObjectStore
from harness.storage.local import LocalObjectStore


def test_round_trip_list_and_delete(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    assert isinstance(store, ObjectStore)
    source = tmp_path / "in.bin"
    source.write_bytes(b"\x00dump\xff")
    store.put_file("sets/2026/a.dump", source)
    store.put_bytes("sets/2026/manifest.json", b"{}")
    store.put_bytes("other/x", b"x")
    assert [o.key for o in store.list("sets/")] == ["sets/2026/a.dump", "sets/2026/manifest.json"]
    assert store.list("sets/")[0].size == 6
    out = tmp_path / "out.bin"
    store.get_file("sets/2026/a.dump", out)
    assert out.read_bytes() == b"\x00dump\xff"
    store.delete("sets/2026/a.dump")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("sets/2026/a.dump")
    assert not list((tmp_path / "store").rglob(".tmp-*")), "temp files left behind"


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "dir/", ""], ids=repr)
def test_keys_cannot_leave_the_root(tmp_path, key):
    with pytest.raises(StorageError, match="invalid object key"):
        LocalObjectStore(tmp_path).put_bytes(key, b"x")


def test_failed_download_leaves_no_partial_file(tmp_path):
    store = LocalObjectStore(tmp_path / "store")
    with pytest.raises(ObjectNotFound):
        store.get_file("missing", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_stores_are_not_created_by_reading(tmp_path):
    store = LocalObjectStore(tmp_path / "absent")
    assert store.list() == []
    assert not (tmp_path / "absent").exists()


def _with_link(root, outside):
    (root / "db").mkdir(parents=True)
    (root / "db" / "app.dump").symlink_to(outside)


def _with_linked_dir(root, outside):
    root.mkdir()
    (root / "db").symlink_to(outside.parent, target_is_directory=True)


def _with_fifo(root, outside):
    (root / "db").mkdir(parents=True)
    os.mkfifo(root / "db" / "app.dump")


@pytest.mark.parametrize(
    ("plant", "why"),
    [
        (_with_link, "is a symbolic link"),
        (_with_linked_dir, "is a symbolic link"),
        (_with_fifo, "is not a regular file"),
    ],
    ids=["file-link", "directory-link", "fifo"],
)
def test_links_and_special_files_are_refused_not_followed(tmp_path, plant, why):
    outside = tmp_path / "outside" / "secret"
    outside.parent.mkdir()
    outside.write_bytes(b"not part of any set")
    plant(tmp_path / "set", outside)
    store = LocalObjectStore(tmp_path / "set")
    with pytest.raises(UnsafeObjectError, match=why):
        store.list()
    key = "db/app.dump" if plant is not _with_linked_dir else "db/secret"
    with pytest.raises(UnsafeObjectError, match=why):
        store.get_bytes(key)  # a FIFO would block here if it were opened for reading
    with pytest.raises(UnsafeObjectError, match=why):
        store.get_file(key, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_writes_do_not_follow_a_linked_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "db").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeObjectError, match="symbolic link"):
        LocalObjectStore(tmp_path / "set").put_bytes("db/app.dump", b"x")
    assert list(outside.iterdir()) == []


def test_stored_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        LocalObjectStore(tmp_path).put_bytes("a/b", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o644


def test_a_missing_source_file_is_a_storage_error(tmp_path):
    with pytest.raises(StorageError, match="cannot store"):
        LocalObjectStore(tmp_path / "s").put_file("a", tmp_path / "missing")
