"""``drill backup``, ``drill check`` and ``drill restore``: the backup-set commands."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from harness.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    allow_destructive_option,
    dsn_option,
    location,
    progress,
    s3_options,
    target,
    workdir,
    workdir_option,
)
from harness.errors import ConfigError
from harness.sets.check import check_set
from harness.sets.restore import restore_set
from harness.sets.table_restore import restore_table
from harness.sets.take import take_backup
from harness.verify.checks import render


def add_commands(sub: Any) -> None:
    """Add the three commands to the ``drill`` subparsers ``sub``."""
    backup = sub.add_parser("backup", help="take a backup set of one database")
    dsn_option(backup)
    backup.add_argument(
        "--to", required=True, metavar="TARGET", help="a new local directory, or s3://bucket/prefix"
    )
    backup.add_argument("--format", choices=("custom", "directory"), default="custom")
    backup.add_argument("--jobs", type=int, default=1, help="parallel dump jobs (directory)")
    backup.add_argument(
        "--no-section-sql", action="store_true", help="skip the per-section human-readable SQL"
    )
    workdir_option(
        backup,
        "the set is staged (a local set: on the destination's filesystem, for the final rename)",
    )
    s3_options(backup)
    backup.set_defaults(run=_backup)

    check = sub.add_parser("check", help="verify a backup set without restoring it")
    check.add_argument("source", help="a set directory, or s3://bucket/prefix")
    workdir_option(check, "an S3 set is downloaded")
    s3_options(check)
    check.set_defaults(run=_check)

    restore = sub.add_parser("restore", help="restore a backup set (ordered, verified)")
    restore.add_argument("--from", dest="source", required=True, metavar="SOURCE")
    dsn_option(restore)
    restore.add_argument("--jobs", type=int, default=1, help="parallel restore jobs")
    restore.add_argument(
        "--clean", action="store_true", help="replace the target database if it is not empty"
    )
    restore.add_argument(
        "--dry-run",
        action="store_true",
        help="check the set, print the plan (every role change included); change nothing",
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
    allow_destructive_option(restore)
    workdir_option(restore, "the set is downloaded and the table's rows extracted")
    s3_options(restore)
    restore.set_defaults(run=_restore)


def _backup(args: argparse.Namespace) -> int:
    where = location(args, args.to)
    staging = workdir(args)
    if staging is not None and where.local is not None:
        _same_filesystem(staging, where.local)
    result = take_backup(
        target(args),
        where,
        fmt=args.format,
        jobs=args.jobs,
        section_sql=not args.no_section_sql,
        workdir=staging,
    )
    manifest = result.manifest
    print(
        f"backup set written to {result.location} in {result.seconds:.1f} s: "
        f"{len(manifest.tables)} tables, {sum(t.rows for t in manifest.tables)} rows, "
        f"{len(manifest.artifacts)} artifacts"
    )
    return EXIT_OK


def _same_filesystem(staging: Path, destination: Path) -> None:
    """A local set is renamed from its staging directory into place: one filesystem."""
    existing = destination.expanduser().absolute()
    while not existing.exists():
        existing = existing.parent
    if staging.stat().st_dev != existing.stat().st_dev:
        raise ConfigError(
            f"--workdir {staging} is on another filesystem than {destination}: a local set is "
            "staged and then renamed into place in one step, which needs one filesystem; "
            "choose a --workdir on the destination's filesystem, or leave it out"
        )


def _check(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="drill-check-", dir=workdir(args)) as tmp:
        checked = check_set(location(args, args.source), workdir=Path(tmp))
        print(render(checked.results))
    print(f"{args.source}: " + ("good" if checked.ok else "BAD"))
    return EXIT_OK if checked.ok else EXIT_FAILED


def _restore(args: argparse.Namespace) -> int:
    if args.table and (args.clean or args.dry_run):
        raise ConfigError("--table cannot be combined with --clean or --dry-run")
    if args.rows_missing_only and not args.table:
        raise ConfigError("--rows-missing-only needs --table")
    db = target(args)
    with tempfile.TemporaryDirectory(prefix="drill-restore-", dir=workdir(args)) as tmp:
        where = location(args, args.source)
        if args.table:
            table = restore_table(
                where,
                db,
                args.table,
                workdir=Path(tmp),
                missing_only=args.rows_missing_only,
                progress=progress,
            )
            print(table.summary())
            return EXIT_OK
        result = restore_set(
            where,
            db,
            workdir=Path(tmp),
            jobs=args.jobs,
            clean=args.clean,
            dry_run=args.dry_run,
            progress=progress,
        )
    if result.dry_run:
        print(result.plan.render())
        print("dry run: nothing was changed")
    else:
        print(render(result.checks))
        print(f"restored into {result.plan.target} in {result.seconds:.1f} s")
    return EXIT_OK
