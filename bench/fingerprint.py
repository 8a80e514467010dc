"""Benchmark: data fingerprint against SELECT count(*), and locating 10 changed rows.

On ``pgbench -i -s SCALE`` (scale 10 = 1 M accounts rows): the data fingerprint's time
divided by ``count(*)`` over the same tables (goal <= 2.0: one pass, hashing in the server),
medians of RUNS; then 10 rows of pgbench_accounts are changed in a copy and located.

``drill verify --locate`` fingerprints both databases with their digests per key range (a
grouped pass instead of the plain one), and the locate starts from those: it reads only the
differing key ranges. That locate is the result line, in fingerprint passes; the grouped
fingerprints' extra cost, a locate that has to read both tables itself, and the whole
``verify --locate`` against a plain ``verify`` are printed beside it. Result lines:

    ratio fingerprint/count: X      (goal <= 2.0)
    ratio locate/fingerprint: X     (goal: well under 2)

    python bench/fingerprint.py [--scale 10] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from psycopg import sql

from harness.config import DrillConfig
from harness.infra.providers.embedded import EmbeddedProvider
from harness.pg.sql import connect, create_database, user_relations
from harness.proc import run
from harness.verify.data import data_fingerprint
from harness.verify.locate import locate_differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp:
        provider = EmbeddedProvider(DrillConfig(s3_backend="moto"), base_dir=Path(tmp))
        try:
            server = provider.pg_server(name="bench")
            app = server.target("app")
            create_database(app, "app")
            run(
                [server.binaries.tool("pgbench"), "-i", "-s", str(args.scale), "-q"],
                timeout=1800,
                env=app.libpq_env(),
            )
            with connect(app, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                conn.execute("CREATE DATABASE copy TEMPLATE app")
                tables = user_relations(conn, "rm")
                rows = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0]
            counts, prints = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                with connect(app) as conn:
                    for schema, name in tables:
                        conn.execute(
                            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
                        ).fetchone()
                counts.append(time.perf_counter() - started)
                started = time.perf_counter()
                data_fingerprint(app)
                prints.append(time.perf_counter() - started)
            copy = server.target("copy")
            with connect(copy, autocommit=True) as conn:
                conn.execute(
                    "UPDATE pgbench_accounts SET abalance = abalance + 1 "
                    "WHERE aid IN (SELECT (g * 99991) %% %s + 1 FROM "
                    "generate_series(1, 10) g)",
                    (rows,),
                )
            # As drill verify --locate takes them: both sides with their key-range digests.
            grouped = []
            for _ in range(args.runs):
                started = time.perf_counter()
                recorded = data_fingerprint(app, buckets=True), data_fingerprint(copy, buckets=True)
                grouped.append((time.perf_counter() - started) / 2)
            pair = tuple(f.get("public.pgbench_accounts") for f in recorded)
            locates, unrecorded = [], []
            for _ in range(args.runs):
                started = time.perf_counter()
                found = locate_differences(
                    app, copy, "public.pgbench_accounts", recorded=(pair[0], pair[1])
                )
                locates.append(time.perf_counter() - started)
                started = time.perf_counter()
                alone = locate_differences(app, copy, "public.pgbench_accounts")
                unrecorded.append(time.perf_counter() - started)
            assert len(found.changed) == len(alone.changed) == 10, (found, alone)
        finally:
            provider.close()
    count_med, print_med = statistics.median(counts), statistics.median(prints)
    print(f"tables: {len(tables)}, pgbench_accounts rows: {rows}")
    print(f"count(*) of every table : median {count_med:.3f} s over {len(counts)} runs")
    print(f"data fingerprint        : median {print_med:.3f} s over {len(prints)} runs")
    locate_med, grouped_med = statistics.median(locates), statistics.median(grouped)
    alone_med = statistics.median(unrecorded)
    print(
        f"fingerprint with buckets: median {grouped_med:.3f} s over {len(grouped)} runs "
        f"({grouped_med / print_med:.2f}x the plain one)"
    )
    print(
        f"locate 10 changed rows  : median {locate_med:.3f} s over {len(locates)} runs, found "
        f"{len(found.changed)} changed, {found.full_passes} full passes + "
        f"{found.rows_read} rows read ({found.rows_read / (2 * rows):.3%} of a second pass)"
    )
    print(
        f"locate without recorded buckets: median {alone_med:.3f} s "
        f"({alone_med / print_med:.2f} fingerprint passes; it reads both tables)"
    )
    plain_verify = 2 * print_med + alone_med
    located_verify = 2 * grouped_med + locate_med
    print(
        f"verify --locate, both sides: {located_verify:.3f} s with buckets, "
        f"{plain_verify:.3f} s fingerprinting plainly and then locating "
        f"({located_verify / plain_verify:.2f}x)"
    )
    print(f"ratio fingerprint/count: {print_med / count_med:.2f}")
    print(f"ratio locate/fingerprint: {locate_med / print_med:.2f}")


if __name__ == "__main__":
    main()
