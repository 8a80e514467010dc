"""Benchmark: how fast a throwaway server is ready, from the template vs. a plain initdb.

The template keeps a spare copy, as the embedded provider's does; servers are asked for
back to back by default (start, remove, start ...), so the spare being copied for the next
server competes with the server being timed, and a start may wait for it: the worst case.
``--gap 1`` leaves a second between servers, as a drill's work does. Prints
medians and their ratio measured in the same run (absolute times on shared machines are
noisy; the ratio is the figure to compare), and the S3 backends' start. Result lines:

    median server ready s: X        (goal <= 0.5)
    ratio server clone/initdb: X    (goal <= 0.4)
    seaweedfs ready s: X            (goal <= 1.0)

    python bench/server_start.py [--runs 10] [--pg-version 17]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness.infra.pg_server import ClusterTemplate, ThrowawayServer
from harness.infra.privilege import choose_identity
from harness.infra.s3.moto import MotoServer
from harness.infra.s3.seaweed import SeaweedServer
from harness.pg.binaries import find_binaries


def time_template_clone(
    template: ClusterTemplate, root: Path, runs: int, *, gap: float = 0.0
) -> list[float]:
    template.ensure()  # initdb once, outside the timed part: that is the point of a template
    times = []
    for i in range(runs):
        time.sleep(gap)  # a drill's work between two servers (0: back to back)
        server = ThrowawayServer(template, workdir=root / f"clone-{i}")
        started = time.perf_counter()
        server.start()
        times.append(time.perf_counter() - started)
        server.remove()
    return times


def time_plain_initdb(binaries, identity, root: Path, runs: int) -> list[float]:
    times = []
    for i in range(runs):
        workdir = root / f"plain-{i}"
        fresh = ClusterTemplate(binaries, base_dir=workdir / "init", identity=identity)
        server = ThrowawayServer(fresh, workdir=workdir)
        started = time.perf_counter()
        fresh.ensure()
        fresh.path.rename(server.datadir)  # the server starts on initdb's own directory
        server.start()
        times.append(time.perf_counter() - started)
        server.remove()
    return times


def time_s3(root: Path, runs: int) -> tuple[list[float], list[float]]:
    weed, moto = [], []
    for i in range(runs):
        with SeaweedServer(root / f"weed-{i}") as s3:
            weed.append(s3.start_seconds)
        with MotoServer() as m:
            moto.append(m.start_seconds)
    return weed, moto


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--s3-runs", type=int, default=5)
    parser.add_argument("--pg-version", type=int)
    parser.add_argument(
        "--gap",
        type=float,
        default=0.0,
        help="seconds between two servers, as a drill's work would leave (default 0)",
    )
    args = parser.parse_args()

    binaries = find_binaries(major=args.pg_version)
    identity = choose_identity()
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp:
        root = Path(tmp)
        template = ClusterTemplate(binaries, base_dir=root / "tpl", identity=identity, spare=True)
        try:
            clone = time_template_clone(template, root, args.runs, gap=args.gap)
        finally:
            template.close()
        plain = time_plain_initdb(binaries, identity, root, args.runs)
        weed, moto = time_s3(root, args.s3_runs)

    clone_med, plain_med = statistics.median(clone), statistics.median(plain)
    print(f"{binaries.describe()}; {identity.describe()}")
    print(
        f"template clone + start : median {clone_med:.3f} s over {len(clone)} runs, "
        f"{args.gap:g} s apart "
        f"(min {min(clone):.3f}, max {max(clone):.3f}); target <= 0.5 s"
    )
    print(
        f"plain initdb + start   : median {plain_med:.3f} s over {len(plain)} runs "
        f"(min {min(plain):.3f}, max {max(plain):.3f})"
    )
    print(
        f"SeaweedFS S3 ready     : median {statistics.median(weed):.2f} s over {len(weed)} runs "
        f"({', '.join(f'{t:.2f}' for t in weed)})"
    )
    print(f"moto S3 thread started : median {statistics.median(moto):.3f} s over {len(moto)} runs")
    print(f"median server ready s: {clone_med:.3f}")
    print(f"ratio server clone/initdb: {clone_med / plain_med:.2f}")
    print(f"seaweedfs ready s: {statistics.median(weed):.2f}")


if __name__ == "__main__":
    main()
