"""Benchmark: a Workers KV backup and restore in bulk against one wrangler process per key.

The backup guide's scripts call ``wrangler kv key get`` once per key (and ``kv key put`` once
per key to restore): every call starts Node. This measures both ways on the same local
namespace, in the same run, and prints the ratio (the figure to compare: absolute times on
shared machines are noisy).

    python bench/cloudflare_kv.py [--keys 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness.cloudflare.kv import WorkersKv
from harness.cloudflare.wrangler import find_wrangler
from harness.infra.wrangler_project import WranglerProject
from harness.kv.base import KvEntry


def entries(count: int) -> list[KvEntry]:
    expires = (int(time.time()) + 24 * 3600) * 1000  # Workers KV keeps whole seconds
    return [
        KvEntry.string(
            f"session:{i:05d}".encode(),
            json.dumps({"user_id": f"u{i}", "cart": list(range(i % 7))}).encode(),
            expires_at_ms=expires,
            metadata={"user_id": f"u{i}"},
        )
        for i in range(count)
    ]


def per_key(kv: WorkersKv, wanted: list[KvEntry]) -> tuple[float, int]:
    """Restore then back up the way the guide does: one wrangler process per key."""
    calls = kv.calls
    started = time.perf_counter()
    for entry in wanted:
        kv.write(entry)  # kv key put, one process each
    names = [k.name for k in kv.list_keys()]  # one listing
    got = [kv._raw_value(name) for name in names]  # kv key get, one process each
    seconds = time.perf_counter() - started
    assert len(got) == len(wanted)
    return seconds, kv.calls - calls


def bulk(kv: WorkersKv, wanted: list[KvEntry]) -> tuple[float, int]:
    """The same work in bulk: one bulk put; key list and bulk get."""
    calls = kv.calls
    started = time.perf_counter()
    kv.write_many(wanted)
    got = kv.read_all()
    seconds = time.perf_counter() - started
    assert got == sorted(wanted, key=lambda e: e.key)
    return seconds, kv.calls - calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=40, help="keys in the namespace")
    args = parser.parse_args()
    wanted = entries(args.keys)
    with tempfile.TemporaryDirectory(prefix="bench-cf-kv-") as tmp:
        root = Path(tmp)
        project = WranglerProject(root / "project", find_wrangler())
        project.add_kv("PERKEY")
        project.add_kv("BULK")
        slow = WorkersKv(project.wrangler, workdir=root / "w1", binding="PERKEY")
        fast = WorkersKv(project.wrangler, workdir=root / "w2", binding="BULK")
        bulk_s, bulk_calls = bulk(fast, wanted)
        slow_s, slow_calls = per_key(slow, wanted)
    print(f"keys: {args.keys} (restore, then back up: every key written and read once)")
    print(f"per-key: {slow_s:7.2f} s  {slow_calls:4d} wrangler processes")
    print(f"bulk:    {bulk_s:7.2f} s  {bulk_calls:4d} wrangler processes")
    print(f"ratio per-key/bulk: {slow_s / bulk_s:.1f}")


if __name__ == "__main__":
    main()
