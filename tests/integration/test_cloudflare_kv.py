"""Workers KV through the real wrangler in local mode: bulk moves, exact bytes, expiry."""

import time

import pytest

from harness.cloudflare import kv_sets
from harness.cloudflare.kv import WorkersKv
from harness.errors import ConfigError, RestoreError
from harness.kv.base import KvEntry
from harness.objects.manifest import stored_key
from harness.storage.local import LocalObjectStore

DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def kv(cf_project, tmp_path):
    cf_project.add_kv("SESSIONS")
    return WorkersKv(cf_project.wrangler, workdir=tmp_path / "kv", binding="SESSIONS")


@pytest.fixture
def store(tmp_path):
    return LocalObjectStore(tmp_path / "backups")


def entries(now_ms, count=120):
    made = [
        KvEntry.string(f"session:{i:04d}".encode(), f'{{"user": "u{i}", "q": "\\""}}'.encode(),
                       expires_at_ms=now_ms + DAY_MS + i * 1000, metadata={"user_id": f"u{i}"})
        for i in range(count)
    ]  # fmt: skip
    made.append(KvEntry.string('ключ ü "q"'.encode(), "値\n\ttab".encode()))
    made.append(KvEntry.string(b"blob", bytes(range(256)), metadata={"kind": "binary"}))
    return made


def test_a_namespace_moves_in_a_few_wrangler_calls_whatever_its_size(kv):
    now = int(time.time() * 1000)
    wanted = entries(now)
    assert kv.write_many(wanted, now_ms=now) == len(wanted)
    assert kv.calls == 2  # one bulk put, one exact put for the binary value
    before = kv.calls
    got = kv.read_all()
    assert kv.calls - before == 3  # key list, bulk get, one exact read of the binary value
    assert kv_sets.compare_entries(wanted, got) == kv_sets.compare_entries(got, got)
    assert all(c.ok for c in kv_sets.compare_entries(wanted, got))
    binary = next(e for e in got if e.key == b"blob")
    assert binary.value == bytes(range(256))
    assert binary.metadata == {"kind": "binary"}


def test_backup_and_restore_keep_values_metadata_and_expiry(kv, store, tmp_path):
    now = int(time.time() * 1000)
    kv.write_many(entries(now, count=10), now_ms=now)
    backup = kv_sets.back_up(kv, store, workdir=tmp_path / "w1")
    assert backup.manifest.extra["keys"] == 12
    kv.delete_many([e.key for e in backup.entries])
    assert kv.read_all() == []
    restored = kv_sets.restore(kv, store, backup.manifest.set_id, workdir=tmp_path / "w2")
    assert restored.written == 12
    assert restored.expired == 0
    assert all(c.ok for c in restored.checks), restored.checks
    assert kv.read_all() == list(backup.entries)


def test_entries_expired_since_the_backup_are_not_restored(kv, store, tmp_path):
    now = int(time.time() * 1000)
    kv.write_many(entries(now, count=3), now_ms=now)
    backup = kv_sets.back_up(kv, store, workdir=tmp_path / "w1")
    kv.delete_many([e.key for e in backup.entries])
    # A week later: the sessions (one day) have expired, the other two keys have none.
    later = now + 7 * DAY_MS
    restored = kv_sets.restore(kv, store, backup.manifest.set_id, workdir=tmp_path / "w2",
                               now_ms=later)  # fmt: skip
    assert (restored.written, restored.expired) == (2, 3)
    assert {e.key for e in kv.read_all()} == {b"blob", 'ключ ü "q"'.encode()}


def test_a_damaged_kv_export_is_refused_before_anything_is_written(kv, store, tmp_path):
    now = int(time.time() * 1000)
    kv.write_many(entries(now, count=3), now_ms=now)
    backup = kv_sets.back_up(kv, store, workdir=tmp_path / "w1")
    kv.delete_many([e.key for e in backup.entries])
    key = stored_key("kv", backup.manifest.set_id, "SESSIONS.jsonl")
    lines = store.get_bytes(key).splitlines(keepends=True)
    store.put_bytes(key, b"".join(lines[:-2] + lines[-1:]))  # one entry line removed
    with pytest.raises(RestoreError, match=r"verify-artifact: SESSIONS\.jsonl in set kv/"):
        kv_sets.restore(kv, store, backup.manifest.set_id, workdir=tmp_path / "w2")
    assert kv.read_all() == []


def test_only_string_entries_with_text_keys_fit_workers_kv(kv):
    with pytest.raises(ConfigError, match="holds strings only"):
        kv.write_many([KvEntry.list_(b"l", [b"a"])])
    with pytest.raises(ConfigError, match="is not UTF-8 text: Workers KV keys are strings"):
        kv.write_many([KvEntry.string(b"\xff", b"v")])
