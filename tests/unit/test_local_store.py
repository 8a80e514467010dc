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


def test_an_adopted_file_is_stored_as_a_second_name_not_a_copy(tmp_path):
    staged = tmp_path / "staging" / "app.dump"
    staged.parent.mkdir()
    staged.write_bytes(b"dump")
    store = LocalObjectStore(tmp_path / "set")
    store.adopt_file("db/app.dump", staged)
    stored = tmp_path / "set" / "db" / "app.dump"
    assert stored.stat().st_ino == staged.stat().st_ino
    staged.unlink()  # the staging directory is discarded after publishing
    assert stored.read_bytes() == b"dump"
    assert not list((tmp_path / "set").rglob(".tmp-*")), "temp files left behind"


def test_adopting_a_link_copies_what_it_points_to_instead(tmp_path):
    real = tmp_path / "real"
    real.write_bytes(b"dump")
    staged = tmp_path / "staged"
    staged.symlink_to(real)
    store = LocalObjectStore(tmp_path / "set")
    store.adopt_file("app.dump", staged)
    stored = tmp_path / "set" / "app.dump"
    assert not stored.is_symlink()
    assert stored.stat().st_ino != real.stat().st_ino
    assert stored.read_bytes() == b"dump"


def test_link_out_pins_the_inode_that_was_checked(tmp_path):
    store = LocalObjectStore(tmp_path / "set")
    store.put_bytes("db/app.dump", b"original")
    out = tmp_path / "work" / "app.dump"
    assert store.link_out("db/app.dump", out)
    # Replacing the stored file afterwards (rename over it) does not reach the reader.
    swap = tmp_path / "set" / "db" / "swap"
    swap.write_bytes(b"replaced")
    swap.replace(tmp_path / "set" / "db" / "app.dump")
    assert out.read_bytes() == b"original"


def test_link_out_declines_a_file_others_may_write(tmp_path):
    store = LocalObjectStore(tmp_path / "set")
    store.put_bytes("app.dump", b"dump")
    (tmp_path / "set" / "app.dump").chmod(0o666)
    out = tmp_path / "work" / "app.dump"
    assert not store.link_out("app.dump", out)
    assert not out.exists()


@pytest.mark.parametrize(
    ("plant", "why"),
    [(_with_link, "is a symbolic link"), (_with_fifo, "is not a regular file")],
    ids=["file-link", "fifo"],
)
def test_link_out_refuses_links_and_special_files(tmp_path, plant, why):
    outside = tmp_path / "outside" / "secret"
    outside.parent.mkdir()
    outside.write_bytes(b"not part of any set")
    plant(tmp_path / "set", outside)
    with pytest.raises(UnsafeObjectError, match=why):
        LocalObjectStore(tmp_path / "set").link_out("db/app.dump", tmp_path / "out")
    assert not (tmp_path / "out").exists()
