"""The ``drill`` command.

Exit codes: 0 success; 1 a check or verification failed (or, for ``doctor``, the embedded
default cannot run); 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.config import OPTIONS_BY_NAME, DrillConfig, OptionSpec, PgTarget
from harness.errors import (
    BackupError,
    ConfigError,
    ConnectError,
    DrillError,
    ObjectNotFound,
    RestoreError,
    VerificationFailed,
)
from harness.infra import doctor
from harness.infra.providers.external import external_s3_target
from harness.redact import redact
from harness.sets.check import check_set
from harness.sets.manifest import Location, parse_location
from harness.sets.restore import INPUT_PHASES, restore_set
from harness.sets.table_restore import restore_table
from harness.sets.take import take_backup
from harness.verify.checks import CheckResult, render
from harness.verify.compare import Fingerprint, compare, take_fingerprint
from harness.verify.locate import locate_differences
from harness.verify.rls import compare_behaviour, rls_behaviour

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Options of DrillConfig the CLI exposes, as --<name> (the pytest spelling is --drill-<name>).
_CLI_OPTIONS = ("pg_bindir", "pg_version", "run_as", "s3", "provider")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``drill``."""
    parser = argparse.ArgumentParser(prog="drill", description="Recovery-drill harness.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("doctor", help="show what can run here; exit 1 if the default cannot")
    doc.add_argument(
        "--start",
        action="store_true",
        help="also start a throwaway PostgreSQL server and the S3 backend",
    )
    for name in _CLI_OPTIONS:
        spec = OPTIONS_BY_NAME[name]
        doc.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            choices=spec.choices,
            help=f"{spec.help} (env {spec.env})",
        )
    backup = sub.add_parser("backup", help="take a backup set of one database")
    _dsn_option(backup)
    backup.add_argument(
        "--to", required=True, metavar="TARGET", help="a new local directory, or s3://bucket/prefix"
    )
    backup.add_argument("--format", choices=("custom", "directory"), default="custom")
    backup.add_argument("--jobs", type=int, default=1, help="parallel dump jobs (directory)")
    backup.add_argument(
        "--no-section-sql", action="store_true", help="skip the per-section human-readable SQL"
    )
    _s3_options(backup)

    check = sub.add_parser("check", help="verify a backup set without restoring it")
    check.add_argument("source", help="a set directory, or s3://bucket/prefix")
    _s3_options(check)

    restore = sub.add_parser("restore", help="restore a backup set (ordered, verified)")
    restore.add_argument("--from", dest="source", required=True, metavar="SOURCE")
    _dsn_option(restore)
    restore.add_argument("--jobs", type=int, default=1, help="parallel restore jobs")
    restore.add_argument(
        "--clean", action="store_true", help="replace the target database if it is not empty"
    )
    restore.add_argument(
        "--dry-run", action="store_true", help="check the set and print the plan; change nothing"
    )
    restore.add_argument(
        "--table",
        metavar="SCHEMA.TABLE",
        help="restore one table's rows into the live database (P3)",
    )
    restore.add_argument(
        "--rows-missing-only",
        action="store_true",
        help="with --table: insert only rows whose primary key is absent",
    )
    _s3_options(restore)

    fingerprint = sub.add_parser("fingerprint", help="print a database's fingerprint")
    _dsn_option(fingerprint)
    fingerprint.add_argument("--json", action="store_true", help="the whole fingerprint as JSON")

    verify = sub.add_parser("verify", help="compare a database with another or with a set")
    _dsn_option(verify)
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
    _s3_options(verify)
    return parser


def _dsn_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn", help="PostgreSQL DSN; or set DRILL_DSN to keep the password off the command line"
    )


def _s3_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--s3-endpoint",
        dest="s3_endpoint",
        help="S3 endpoint URL (keys in DRILL_S3_ACCESS_KEY_ID / DRILL_S3_SECRET_ACCESS_KEY)",
    )
    parser.add_argument("--s3-region", dest="s3_region")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``drill``; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # A handler of our own for this call (not basicConfig): main() may run in-process many
    # times, each with its own stderr.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("harness")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    commands = {
        "doctor": _doctor,
        "backup": _backup,
        "check": _check,
        "restore": _restore,
        "fingerprint": _fingerprint,
        "verify": _verify,
    }
    try:
        return commands[args.command](args)
    except DrillError as exc:
        print(f"drill: error: {redact(str(exc))}", file=sys.stderr)
        return exit_code(exc)
    finally:
        logger.removeHandler(handler)


def exit_code(exc: DrillError) -> int:
    """1 when a check or step failed, 2 when the input was wrong."""
    if isinstance(exc, (ConfigError, ConnectError, ObjectNotFound)):
        return EXIT_USAGE
    if isinstance(exc, RestoreError) and exc.phase in INPUT_PHASES:
        return EXIT_USAGE
    if isinstance(exc, BackupError) and exc.phase in ("preflight", "options"):
        return EXIT_USAGE
    return EXIT_FAILED


def _target(args: argparse.Namespace, *, destructive: bool = False) -> PgTarget:
    dsn = args.dsn or os.environ.get("DRILL_DSN")
    if not dsn:
        raise ConfigError("no database given: pass --dsn or set DRILL_DSN")
    return PgTarget.from_dsn(dsn, destructive_ok=destructive)


def _location(args: argparse.Namespace, uri: str) -> Location:
    s3 = None
    if uri.startswith("s3://"):
        s3 = external_s3_target(_config_from(args))
    return parse_location(uri, s3=s3)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _backup(args: argparse.Namespace) -> int:
    result = take_backup(
        _target(args),
        _location(args, args.to),
        fmt=args.format,
        jobs=args.jobs,
        section_sql=not args.no_section_sql,
    )
    manifest = result.manifest
    print(
        f"backup set written to {result.location} in {result.seconds:.1f} s: "
        f"{len(manifest.tables)} tables, {sum(t.rows for t in manifest.tables)} rows, "
        f"{len(manifest.artifacts)} artifacts"
    )
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="drill-check-") as tmp:
        checked = check_set(_location(args, args.source), workdir=Path(tmp))
        print(render(checked.results))
    print(f"{args.source}: " + ("good" if checked.ok else "BAD"))
    return EXIT_OK if checked.ok else EXIT_FAILED


def _restore(args: argparse.Namespace) -> int:
    # --clean and --table are the user's own instruction to replace data in this target.
    target = _target(args, destructive=args.clean or bool(args.table))
    with tempfile.TemporaryDirectory(prefix="drill-restore-") as tmp:
        location = _location(args, args.source)
        if args.table:
            if args.clean or args.dry_run:
                raise ConfigError("--table cannot be combined with --clean or --dry-run")
            table = restore_table(
                location,
                target,
                args.table,
                workdir=Path(tmp),
                missing_only=args.rows_missing_only,
                progress=_progress,
            )
            print(table.summary())
            return EXIT_OK
        if args.rows_missing_only:
            raise ConfigError("--rows-missing-only needs --table")
        result = restore_set(
            location,
            target,
            workdir=Path(tmp),
            jobs=args.jobs,
            clean=args.clean,
            dry_run=args.dry_run,
            progress=_progress,
        )
    if result.dry_run:
        print(result.plan.render())
        print("dry run: nothing was changed")
    else:
        print(render(result.checks))
        print(f"restored into {result.plan.target} in {result.seconds:.1f} s")
    return EXIT_OK


def _fingerprint(args: argparse.Namespace) -> int:
    fingerprint = take_fingerprint(_target(args))
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
    target = _target(args)
    tables = {t.strip() for t in args.tables.split(",")} if args.tables else None
    reference_target = None
    if args.against:
        with tempfile.TemporaryDirectory(prefix="drill-verify-") as tmp:
            checked = check_set(_location(args, args.against), workdir=Path(tmp))
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
        expected = take_fingerprint(reference_target)
    comparison = compare(expected, take_fingerprint(target), tables=tables)
    checks = list(comparison.checks)
    diff = comparison.diff
    if args.rls and reference_target is not None:
        same, rls_diff = compare_behaviour(rls_behaviour(reference_target), rls_behaviour(target))
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
                if expected.data.get(table) is not None:
                    print(locate_differences(reference_target, target, table).render())
    failed = [c for c in checks if c.critical and not c.ok]
    print("equal" if not failed else f"DIFFERENT: {len(failed)} checks failed")
    return EXIT_OK if not failed else EXIT_FAILED


def _config_from(args: argparse.Namespace) -> DrillConfig:
    def lookup(spec: OptionSpec) -> str | None:
        value = getattr(args, spec.name, None)
        return str(value) if value is not None else None

    return DrillConfig.resolve(lookup)


def _doctor(args: argparse.Namespace) -> int:
    config = _config_from(args)
    with tempfile.TemporaryDirectory(prefix="drill-doctor-") as tmp:
        findings = doctor.examine(config, start=args.start, workdir=Path(tmp))
    width = max(len(f.area) for f in findings)
    for finding in findings:
        mark = "ok " if finding.ok else ("ERR" if finding.needed else "-- ")
        print(f"{mark} {finding.area:<{width}}  {redact(finding.detail)}")
    ready = doctor.embedded_ready(findings)
    print("embedded default: " + ("ready" if ready else "NOT ready (see ERR lines)"))
    return EXIT_OK if ready else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
