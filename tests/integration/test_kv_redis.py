"""Redis through the key-value adapter: byte-exact, every type, expiries; damaged exports."""

import time

import pytest

from harness.errors import ConfigError, KvExportError, RestoreError
from harness.kv.backup import backup_kv, fetch_export, restore_kv, verify_kv
from harness.kv.base import KvEntry, StreamRecord
from harness.kv.redis_store import RedisStore, RedisTarget
from harness.storage.local import LocalObjectStore

IN_A_DAY = int(time.time() * 1000) + 86_400_000
ENTRIES = [
    KvEntry.string(b"\xff\x00bin", b"\x00\xff\xfe\r\n", expires_at_ms=IN_A_DAY),
    KvEntry.hash(b"session:\xe3\x81\x82", [(b"user_id", b"u1"), (b"\xff", b"\x00")]),
    KvEntry.list_(b"l", [b"z", b"a", b"a"]),
    KvEntry.set_(b"s", [b"\x01", b"\x02"]),
    KvEntry.zset(b"z", [(b"a", float("inf")), (b"b", -0.1), (b"c", 1e300)]),
    KvEntry.stream(b"st", [StreamRecord("5-1", ((b"f", b"v"), (b"f", b"w")))]),
]


@pytest.fixture
def source(redis_server_factory):
    store = RedisStore(redis_server_factory("source").target())
    for entry in ENTRIES:
        store.write(entry)
    return store


def test_every_type_reads_back_exactly(source):
    for entry in ENTRIES:
        got = source.read(entry.key)
        assert got is not None, entry.key
        assert got.same_content(entry), entry.key
    assert abs(source.read(ENTRIES[0].key).expires_at_ms - IN_A_DAY) < 2000
    assert sorted(source.keys()) == sorted(e.key for e in ENTRIES)


def test_backup_restore_verify(source, redis_server_factory, tmp_path):
    backups = LocalObjectStore(tmp_path / "backups")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    result = backup_kv(source, backups, workdir=tmp_path / "a", set_id="20250101")
    assert result.summary.entries == len(ENTRIES)
    target = RedisStore(redis_server_factory("target").target())
    target.write(KvEntry.string(b"stale", b"x"))
    export, _ = fetch_export(backups, "20250101", tmp_path / "b")
    done = restore_kv(export, target, prune=True)
    assert (done.written, done.pruned) == (len(ENTRIES), 1)
    assert verify_kv(export, target, extra_is_critical=True).ok
    target.delete(b"l")
    target.write(KvEntry.string(b"s", b"not a set"))
    found = verify_kv(export, target)
    assert found.missing == ("l",)
    assert found.changed == (("s", "a string instead of a set"),)


def test_expired_entries_are_not_restored(redis_server_factory, tmp_path):
    source = RedisStore(redis_server_factory("source").target())
    source.write(KvEntry.string(b"soon", b"x", expires_at_ms=int(time.time() * 1000) + 300))
    source.write(KvEntry.string(b"kept", b"y"))
    backups = LocalObjectStore(tmp_path / "backups")
    backup_kv(source, backups, workdir=tmp_path, set_id="20250101")
    export, _ = fetch_export(backups, "20250101", tmp_path)
    target = RedisStore(redis_server_factory("target").target())
    done = restore_kv(export, target, now_ms=int(time.time() * 1000) + 1000)
    assert (done.written, done.expired) == (1, 1)


def test_a_key_lost_from_the_export_is_refused_before_anything_is_written(
    source, redis_server_factory, tmp_path
):
    backups = LocalObjectStore(tmp_path / "backups")
    backup_kv(source, backups, workdir=tmp_path, set_id="20250101")
    stored = tmp_path / "backups/backups/kv/20250101/export.jsonl"
    lines = stored.read_bytes().splitlines(keepends=True)
    stored.write_bytes(b"".join(lines[:2] + lines[3:]))  # one key gone
    with pytest.raises(KvExportError, match="changed after the backup"):
        fetch_export(backups, "20250101", tmp_path)
    target = RedisStore(redis_server_factory("target").target())
    with pytest.raises(KvExportError, match="lines were removed or added"):
        restore_kv(stored, target)
    assert list(target.keys()) == []


def test_a_store_that_cannot_hold_a_type_is_left_untouched(source, tmp_path):
    class StringsOnly(RedisStore):
        value_types = frozenset({"string"})

    backups = LocalObjectStore(tmp_path / "backups")
    backup_kv(source, backups, workdir=tmp_path, set_id="20250101")
    export, _ = fetch_export(backups, "20250101", tmp_path)
    with pytest.raises(RestoreError, match="cannot hold hash, list, set, stream, zset"):
        restore_kv(export, StringsOnly(source.target))


def test_passwords_stay_out_of_urls():
    with pytest.raises(ConfigError, match="DRILL_REDIS_PASSWORD"):
        RedisTarget.from_url("redis://:hunter2-long-secret@127.0.0.1:6379/0")
    target = RedisTarget.from_url("redis://127.0.0.1:6380/2", password="from-the-environment")
    assert (target.port, target.db) == (6380, 2)
    assert "from-the-environment" not in repr(target)
