"""Key-value store loss: the Redis server is gone with every session and cache entry.

Sessions (hashes with expiries), binary cache values, a list and a sorted set are exported
to a dated set (JSON Lines, binary values base64, absolute expiries) in the backup bucket.
The server is then destroyed; a new one is started and the export restored into it. Every
key is read back and compared: type, value byte for byte, expiry.
"""

import pytest

from harness.drill import stack
from harness.kv.backup import backup_kv, fetch_export, restore_kv, verify_kv
from harness.kv.redis_store import RedisStore, ping
from harness.verify.checks import CheckResult

pytestmark = pytest.mark.drill

USERS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(20)]


def test_kv_loss(redis_server_factory, object_store, drill_run, drill_workdir):
    server = redis_server_factory("source")
    store = RedisStore(server.target())
    with drill_run.phase("seed", "sessions, binary cache values, a list, a sorted set"):
        written = stack.seed_sessions(store, USERS)
        stack.kv_canary(store)
    with drill_run.phase("backup", "JSON Lines export to a dated set"):
        backup = backup_kv(store, object_store, workdir=drill_workdir)
        stack.record_object_set(drill_run, backup.manifest, backup.manifest_key)
    last_write = stack.kv_canary(store)  # after the backup: this one is lost

    with drill_run.phase("disaster", "redis-server stopped, its data gone"):
        server.remove()
    with drill_run.phase("detect"):
        down = not ping(server.target())
        drill_run.add([CheckResult("loss detected", ok=down, critical=True, detail="no answer")])
    with drill_run.phase("restore", "new redis-server, export of the newest set"):
        replacement = RedisStore(redis_server_factory("replacement").target())
        export, summary = fetch_export(object_store, backup.manifest.set_id, drill_workdir)
        restored = restore_kv(export, replacement, prune=True)
    with drill_run.phase("verify"):
        drill_run.add(verify_kv(export, replacement, extra_is_critical=True).checks())
        drill_run.verified()
    stack.record_store_rpo(drill_run, last_write, stack.newest_kv_canary(replacement))

    assert summary.entries == restored.written == written + 1
    assert drill_run.passed, drill_run.failures()
