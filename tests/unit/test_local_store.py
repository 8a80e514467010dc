import pytest

from harness.errors import ObjectNotFound, StorageError
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
