"""``drill fingerprint`` and ``drill verify``: what a database holds, and how two compare."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_FAILED, EXIT_OK, dsn_option, location, s3_options, target
from harness.config import PgTarget
from harness.errors import ConfigError, VerificationFailed
from harness.sets.check import check_set
from harness.verify.checks import CheckResult, render
from harness.verify.compare import Fingerprint, compare, take_fingerprint
from harness.verify.locate import locate_differences
from harness.verify.rls import compare_behaviour, rls_behaviour


def add_commands(sub: Any) -> None:
    """Add the two commands to the ``drill`` subparsers ``sub``."""
    fingerprint = sub.add_parser("fingerprint", help="print a database's fingerprint")
    dsn_option(fingerprint)
    fingerprint.add_argument("--json", action="store_true", help="the whole fingerprint as JSON")
    fingerprint.set_defaults(run=_fingerprint)

    verify = sub.add_parser("verify", help="compare a database with another or with a set")
    dsn_option(verify)
    against = verify.add_mutually_exclusive_group()
    against.add_argument("--against-dsn", help="the reference database (or DRILL_AGAINST_DSN)")
    against.add_argument("--against", metavar="SOURCE", help="a backup set (its fingerprint)")
    verify.add_argument("--tables", help="compare only these schema.table names (comma list)")
    verify.add_argument(
        "--rls",
        action="store_true",
        help="also compare RLS behaviour (with --against-dsn; read-only probes)",
    )
    verify.add_argument(
        "--locate",
        action="store_true",
        help="find the differing rows of differing tables (with --against-dsn)",
    )
    s3_options(verify)
    verify.set_defaults(run=_verify)


def _fingerprint(args: argparse.Namespace) -> int:
    fingerprint = take_fingerprint(target(args))
    if args.json:
        print(fingerprint.to_json())
        return EXIT_OK
    print(f"PostgreSQL {fingerprint.server_version}")
    for table in fingerprint.data.tables:
        print(f"data    {table.qualified:<40} {table.rows:>10} rows  digest {table.digest}")
    for name, rows in sorted(fingerprint.catalog.sections.items()):
        print(f"catalog {name:<40} {len(rows):>10} objects")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    db = target(args)
    tables = {t.strip() for t in args.tables.split(",")} if args.tables else None
    reference_target = None
    if args.against:
        with tempfile.TemporaryDirectory(prefix="drill-verify-") as tmp:
            checked = check_set(location(args, args.against), workdir=Path(tmp))
            if not checked.ok or checked.manifest is None:
                print(render(checked.results))
                raise VerificationFailed("the backup set failed its checks", checks=checked.results)
            path = checked.root / checked.manifest.artifact("fingerprint").path
            expected = Fingerprint.from_json(path.read_text())
    else:
        dsn = args.against_dsn or os.environ.get("DRILL_AGAINST_DSN")
        if not dsn:
            raise ConfigError("no reference database: pass --against-dsn or set DRILL_AGAINST_DSN")
        reference_target = PgTarget.from_dsn(dsn)
        # With --locate, both fingerprints keep their digests per key range: the locate
        # then reads only the differing ranges, not every table twice more.
        expected = take_fingerprint(reference_target, buckets=args.locate)
    actual = take_fingerprint(
        db, like=expected, buckets=args.locate and reference_target is not None
    )
    comparison = compare(expected, actual, tables=tables)
    checks = list(comparison.checks)
    diff = comparison.diff
    if args.rls and reference_target is not None:
        same, rls_diff = compare_behaviour(rls_behaviour(reference_target), rls_behaviour(db))
        checks.append(
            CheckResult(
                "rls behaviour",
                ok=same,
                critical=True,
                detail="identical" if same else "differs (see diff)",
            )
        )
        diff = "\n".join(filter(None, [diff, rls_diff]))
    print(render(checks))
    if diff:
        print("\n--- differences ---\n" + diff)
    if args.locate and reference_target is not None:
        for check in checks:
            if check.name.startswith("data ") and not check.ok and check.critical:
                table = check.name.removeprefix("data ")
                recorded = (expected.data.get(table), actual.data.get(table))
                if recorded[0] is not None:
                    found = locate_differences(reference_target, db, table, recorded=recorded)
                    print(found.render())
    failed = [c for c in checks if c.critical and not c.ok]
    print("equal" if not failed else f"DIFFERENT: {len(failed)} checks failed")
    return EXIT_OK if not failed else EXIT_FAILED
