"""Benchmark: the harness's cost as the database grows, beside the raw tools, per pgbench scale.

For each scale (1, 10, 100: 100 k, 1 M and 10 M ``pgbench_accounts`` rows) on throwaway
servers of the embedded provider:

- backup: ``pg_dumpall --roles-only`` + ``pg_dump -Fc`` (raw) vs ``take_backup`` (globals,
  dump, per-section SQL, fingerprint, manifest);
- restore into a new server: ``psql`` + ``createdb`` + ``pg_restore`` (raw) vs
  ``restore_set`` (hash checks, ordered restore, fingerprint verified after);
- fingerprint: ``count(*)`` of every table vs the data fingerprint;
- locate: 10 changed rows of ``pgbench_accounts`` in a copy, as ``drill verify --locate``
  runs it (from both sides' fingerprints taken with their key-range buckets), vs one
  fingerprint pass; and that bucketed fingerprint against the plain one.

Prints one table, one row per scale, with the ratios, and the harness process's peak
memory after each scale: it must stay flat (< 100 MiB at 10 M rows), since dumps are
streamed and rows are hashed in the server. Scale 100 needs ~1.5 GB of disk per copy and a
few minutes. Result lines, one per scale:

    scale N: backup X, restore X, fingerprint X, locate X, peak MiB X

    python bench/scale.py [--scales 1,10,100] [--runs 1]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from psycopg import sql

from harness.config import DrillConfig
from harness.infra.providers.embedded import EmbeddedProvider
from harness.pg.dump import dump_database, restore_dump
from harness.pg.sql import connect, create_database, user_relations
from harness.proc import run
from harness.sets.location import parse_location
from harness.sets.restore import restore_set
from harness.sets.take import take_backup
from harness.verify.data import DataFingerprint, data_fingerprint
from harness.verify.locate import locate_differences


class Row(NamedTuple):
    """Medians of one scale, in seconds, and the peak memory after it."""

    scale: int
    rows: int
    raw_backup: float
    backup: float
    raw_restore: float
    restore: float
    count: float
    fingerprint: float
    bucketed: float
    locate: float
    peak_mib: float


def _median(measure: Callable[[int], float], runs: int) -> float:
    return statistics.median(measure(i) for i in range(runs))


def _timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_scale(provider: EmbeddedProvider, root: Path, scale: int, runs: int) -> Row:
    """Load ``pgbench -i -s scale`` and measure every step beside its raw counterpart."""
    source = provider.pg_server(name=f"source-{scale}")
    app = source.target("app")
    create_database(app, "app")
    run(
        [source.binaries.tool("pgbench"), "-i", "-s", str(scale), "-q"],
        timeout=3600,
        env=app.libpq_env(),
    )
    with connect(app, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CREATE DATABASE copy TEMPLATE app")
        tables = user_relations(conn, "rm")
        rows = int(conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0])
    copy = source.target("copy")
    with connect(copy, autocommit=True) as conn:
        conn.execute(
            "UPDATE pgbench_accounts SET abalance = abalance + 1 "
            "WHERE aid IN (SELECT (g * 99991) %% %s + 1 FROM generate_series(1, 10) g)",
            (rows,),
        )
    work = root / f"scale-{scale}"
    work.mkdir()

    def raw_backup(i: int) -> float:
        out = work / f"raw-{i}"
        out.mkdir()
        started = time.perf_counter()
        run(
            [source.binaries.tool("pg_dumpall"), "--roles-only", f"--file={out / 'roles.sql'}"],
            timeout=3600,
            env=app.libpq_env(),
        )
        dump_database(source.binaries, app, out / "raw.dump")
        return time.perf_counter() - started

    def backup(i: int) -> float:
        return _timed(lambda: take_backup(app, parse_location(str(work / f"set-{i}"))))

    def raw_restore(i: int) -> float:
        target = provider.pg_server(name=f"raw-{scale}-{i}")
        try:
            started = time.perf_counter()
            run(
                [target.binaries.tool("psql"), "--quiet", f"--file={work / f'raw-{i}/roles.sql'}"],
                timeout=3600,
                env=target.target().libpq_env(),
            )
            create_database(target.target("app"), "app")
            restore_dump(target.binaries, target.target("app"), work / f"raw-{i}" / "raw.dump")
            return time.perf_counter() - started
        finally:
            provider.release(target, keep=False)

    def restore(i: int) -> float:
        target = provider.pg_server(name=f"harness-{scale}-{i}")
        try:
            location = parse_location(str(work / f"set-{i}"))
            scratch = work / f"restore-{i}"
            return _timed(lambda: restore_set(location, target.target("app"), workdir=scratch))
        finally:
            provider.release(target, keep=False)

    def count(_: int) -> float:
        def every_table() -> None:
            with connect(app) as conn:
                for schema, name in tables:
                    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
                    conn.execute(query).fetchone()

        return _timed(every_table)

    def fingerprint(_: int) -> float:
        return _timed(lambda: data_fingerprint(app))

    recorded: list[DataFingerprint] = []

    def bucketed(_: int) -> float:
        started = time.perf_counter()
        reference = data_fingerprint(app, buckets=True)
        took = time.perf_counter() - started
        recorded[:] = [reference, data_fingerprint(copy, buckets=True)]
        return took

    def locate(_: int) -> float:
        pair = tuple(f.get("public.pgbench_accounts") for f in recorded)
        return _timed(
            lambda: locate_differences(
                app, copy, "public.pgbench_accounts", recorded=(pair[0], pair[1])
            )
        )

    # Backups first: the restores read them. Raw and harness alternate within each pair.
    raw_b, harness_b = _median(raw_backup, runs), _median(backup, runs)
    raw_r, harness_r = _median(raw_restore, runs), _median(restore, runs)
    quick = max(runs, 5)  # the reads are short: more runs for a steadier median
    counted, printed = _median(count, quick), _median(fingerprint, quick)
    grouped, located = _median(bucketed, quick), _median(locate, quick)
    provider.release(source, keep=False)
    return Row(
        scale=scale,
        rows=rows,
        raw_backup=raw_b,
        backup=harness_b,
        raw_restore=raw_r,
        restore=harness_r,
        count=counted,
        fingerprint=printed,
        bucketed=grouped,
        locate=located,
        peak_mib=_peak_mib(),
    )


def render(rows: list[Row], *, start_mib: float) -> str:
    """The table: seconds and ratios per scale."""
    header = (
        f"{'scale':>5} {'rows':>10} | {'dump s':>7} {'backup s':>8} {'ratio':>5} | "
        f"{'restore s':>9} {'harness s':>9} {'ratio':>5} | {'count s':>7} {'fprint s':>8} "
        f"{'ratio':>5} | {'bucketed':>8} {'locate s':>8} {'/fprint':>7} | {'peak MiB':>8}"
    )
    lines = [f"harness process after imports: {start_mib:.0f} MiB", header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.scale:>5} {r.rows:>10} | {r.raw_backup:>7.2f} {r.backup:>8.2f} "
            f"{r.backup / r.raw_backup:>5.2f} | {r.raw_restore:>9.2f} {r.restore:>9.2f} "
            f"{r.restore / r.raw_restore:>5.2f} | {r.count:>7.3f} {r.fingerprint:>8.3f} "
            f"{r.fingerprint / r.count:>5.2f} | {r.bucketed / r.fingerprint:>7.2f}x "
            f"{r.locate:>8.3f} "
            f"{r.locate / r.fingerprint:>7.2f} | {r.peak_mib:>8.0f}"
        )
    for r in rows:
        lines.append(
            f"scale {r.scale}: backup {r.backup / r.raw_backup:.2f}, restore "
            f"{r.restore / r.raw_restore:.2f}, fingerprint {r.fingerprint / r.count:.2f}, "
            f"locate {r.locate / r.fingerprint:.2f}, peak MiB {r.peak_mib:.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every scale asked for and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10,100")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    start_mib = _peak_mib()
    results = []
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp:
        root = Path(tmp)
        provider = EmbeddedProvider(DrillConfig(s3_backend="moto"), base_dir=root / "infra")
        try:
            for scale in scales:
                started = time.perf_counter()
                results.append(measure_scale(provider, root, scale, args.runs))
                print(
                    f"scale {scale} measured in {time.perf_counter() - started:.0f} s", flush=True
                )
        finally:
            provider.close()
    print(render(results, start_mib=start_mib))


if __name__ == "__main__":
    main()
