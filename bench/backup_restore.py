"""Benchmark: harness backup + restore against raw pg_dumpall/pg_dump -Fc/pg_restore.

The database is ``pgbench -i -s SCALE`` (scale 10 = 1 M accounts rows) plus the
every-object-kind fixture. Prints both timings (median of RUNS), their ratio (goal <= 1.10:
manifest, hashing and ordering should cost almost nothing) and the harness process's peak
memory (it streams: no dump is ever loaded into memory). Beside it, the same harness
backup and restore without the fingerprint (row counts only): the share of the two
fingerprint passes, the proof that raw tools do not give. Result line:

    ratio harness/raw: X            (goal <= 1.10)

    python bench/backup_restore.py [--scale 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from harness.config import DrillConfig, PgTarget
from harness.infra.providers import PgServer
from harness.infra.providers.embedded import EmbeddedProvider
from harness.pg.dump import dump_database, restore_dump
from harness.pg.sql import connect, create_database, run_sql_file
from harness.proc import run
from harness.sets.location import parse_location
from harness.sets.restore import restore_set
from harness.sets.take import take_backup

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _raw(source: PgServer, app: PgTarget, target: PgServer, work: Path) -> float:
    """What one would script by hand: roles, then the database."""
    work.mkdir(exist_ok=True)
    started = time.perf_counter()
    roles = work / "roles.sql"
    run(
        [source.binaries.tool("pg_dumpall"), "--roles-only", f"--file={roles}"],
        timeout=600,
        env=app.libpq_env(),
    )
    dump = dump_database(source.binaries, app, work / "raw.dump")
    run(
        [target.binaries.tool("psql"), "--quiet", f"--file={roles}"],
        timeout=600,
        env=target.target().libpq_env(),
    )
    create_database(target.target("app"), "app")
    restore_dump(target.binaries, target.target("app"), dump.path)
    return time.perf_counter() - started


def _harness(
    source: PgServer, app: PgTarget, target: PgServer, work: Path, *, fingerprint: bool = True
) -> float:
    work.mkdir(exist_ok=True)
    location = parse_location(str(work / "set"))
    started = time.perf_counter()
    take_backup(app, location, with_fingerprint=fingerprint)
    restore_set(location, target.target("app"), workdir=work)
    return time.perf_counter() - started


def _unproven(source: PgServer, app: PgTarget, target: PgServer, work: Path) -> float:
    return _harness(source, app, target, work, fingerprint=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp:
        root = Path(tmp)
        provider = EmbeddedProvider(DrillConfig(s3_backend="moto"), base_dir=root / "infra")
        try:
            source = provider.pg_server(name="source")
            app = source.target("app")
            create_database(app, "app")
            run_sql_file(app, FIXTURES / "supabase_roles.sql")
            run_sql_file(app, FIXTURES / "every_object.sql")
            # pgbench -i drops its tables first: the fixture's event trigger allows that only
            # in development.
            env = {**app.libpq_env(), "PGOPTIONS": "-c app.environment=development"}
            run(
                [source.binaries.tool("pgbench"), "-i", "-s", str(args.scale), "-q"],
                timeout=1800,
                env=env,
            )
            with connect(app) as conn:
                rows = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()[0]
            times: dict[str, list[float]] = {"raw": [], "harness": [], "unproven": []}
            for i in range(args.runs):
                # Rotate which goes first: on a shared 2-core machine the second of two
                # back-to-back runs is measurably slower (checkpoints, page cache).
                order = [_raw, _harness, _unproven]
                for measure in order[i % 3 :] + order[: i % 3]:
                    name = measure.__name__.strip("_")
                    target = provider.pg_server(name=f"{name}-{i}")
                    times[name].append(measure(source, app, target, root / f"run-{i}-{name}"))
                    provider.release(target, keep=False)
        finally:
            provider.close()

    raw, harness, unproven = times["raw"], times["harness"], times["unproven"]
    raw_med, harness_med = statistics.median(raw), statistics.median(harness)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database: pgbench scale {args.scale} ({rows} accounts rows) + fixture")
    print(
        f"raw roles + dump + restore    : median {raw_med:.2f} s over {len(raw)} runs "
        f"({', '.join(f'{t:.2f}' for t in raw)})"
    )
    print(
        f"harness backup + restore      : median {harness_med:.2f} s over {len(harness)} runs "
        f"({', '.join(f'{t:.2f}' for t in harness)})"
    )
    print(
        f"harness without fingerprints  : median {statistics.median(unproven):.2f} s "
        f"({statistics.median(unproven) / raw_med:.2f}x raw; row counts only)"
    )
    print(f"ratio harness/raw: {harness_med / raw_med:.2f}")
    print(f"harness process peak RSS      : {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
