"""``drill objects backup|restore|verify``: bucket backups into dated sets, restores, checks.

Examples::

    drill objects backup --from s3://images --to s3://backups --kind images --lock-days 30
    drill objects restore --from s3://backups --to s3://images --date 20250131
    drill objects verify --from s3://backups --date 20250131 --against s3://images
"""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.common import EXIT_OK, s3_options
from harness.cli.store_common import bucket, progress_printer, report, signing_key
from harness.objects.backup import backup_bucket, lock_for
from harness.objects.copy import CopyOptions
from harness.objects.restore import choose_set, restore_objects, verify_bucket, verify_set


def add_commands(sub: Any) -> None:
    """Add ``objects`` and its subcommands to the ``drill`` command."""
    objects = sub.add_parser("objects", help="back up, restore and verify buckets")
    cmds = objects.add_subparsers(dest="objects_command", required=True)

    backup = cmds.add_parser("backup", help="copy a bucket into a new dated set")
    backup.add_argument("--from", dest="source", required=True, metavar="s3://BUCKET[/PREFIX]")
    backup.add_argument("--to", dest="backup", required=True, metavar="s3://BACKUP-BUCKET")
    backup.add_argument("--set", dest="set_id", help="set id (default: today, UTC)")
    backup.add_argument("--full", action="store_true", help="copy everything, even unchanged")
    backup.add_argument(
        "--rehash", action="store_true", help="decide 'unchanged' by SHA-256, not size and ETag"
    )
    backup.add_argument("--lock-mode", choices=("GOVERNANCE", "COMPLIANCE"))
    backup.add_argument("--lock-days", type=int, default=0, help="Object Lock retention days")
    _common(backup)
    backup.set_defaults(run=run_backup)

    restore = cmds.add_parser("restore", help="restore a dated set into a bucket and verify it")
    restore.add_argument("--from", dest="backup", required=True, metavar="s3://BACKUP-BUCKET")
    restore.add_argument("--to", dest="target", required=True, metavar="s3://BUCKET[/PREFIX]")
    restore.add_argument("--date", help="YYYYMMDD (newest set of that day) or a set id")
    restore.add_argument(
        "--prune", action="store_true", help="delete objects the set does not hold"
    )
    _common(restore)
    restore.set_defaults(run=run_restore)

    verify = cmds.add_parser("verify", help="hash every object of a set (no restore)")
    verify.add_argument("--from", dest="backup", required=True, metavar="s3://BACKUP-BUCKET")
    verify.add_argument("--date", help="YYYYMMDD or a set id (default: the newest)")
    verify.add_argument("--against", metavar="s3://BUCKET", help="also compare this bucket")
    _common(verify)
    verify.set_defaults(run=run_verify)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", default="images", help="what the sets hold (default: images)")
    parser.add_argument("--workers", type=int, default=16, help="parallel transfers")
    parser.add_argument(
        "--no-server-side", action="store_true", help="stream copies even on one endpoint"
    )
    s3_options(parser)


def _options(args: argparse.Namespace, **kw: Any) -> CopyOptions:
    return CopyOptions(workers=max(1, args.workers), server_side=not args.no_server_side, **kw)


def run_backup(args: argparse.Namespace) -> int:
    """``drill objects backup``."""
    from datetime import UTC, datetime

    lock = lock_for(args.lock_mode, args.lock_days, datetime.now(UTC))
    result = backup_bucket(
        bucket(args, args.source),
        bucket(args, args.backup),
        kind=args.kind,
        set_id=args.set_id,
        incremental=not args.full,
        rehash=args.rehash,
        options=_options(args, lock=lock),
        progress=progress_printer("backup"),
        signing_key=signing_key(),
    )
    print(result.describe())
    print(f"manifest: {result.manifest_key} (sha256 {result.manifest.digest})")
    return EXIT_OK


def run_restore(args: argparse.Namespace) -> int:
    """``drill objects restore``: exit 1 when the restored bucket does not match the set."""
    backups = bucket(args, args.backup)
    set_id = choose_set(backups, args.kind, args.date)
    result = restore_objects(
        backups,
        args.kind,
        set_id,
        bucket(args, args.target),
        signing_key=signing_key(),
        options=_options(args),
        prune=args.prune,
        progress=progress_printer("restore"),
    )
    print(f"restored {result.restored} objects of {args.kind}/{set_id} in {result.seconds:.1f} s")
    return report(result.comparison.checks())


def run_verify(args: argparse.Namespace) -> int:
    """``drill objects verify``: exit 1 when an object is missing or changed."""
    backups = bucket(args, args.backup)
    set_id = choose_set(backups, args.kind, args.date)
    key = signing_key()
    checks = verify_set(
        backups, args.kind, set_id, signing_key=key, workers=args.workers,
        progress=progress_printer("verify"),
    ).checks()  # fmt: skip
    if args.against:
        from harness.objects.manifest import read_object_manifest

        manifest = read_object_manifest(backups.store(), args.kind, set_id, signing_key=key)
        checks += verify_bucket(
            bucket(args, args.against), manifest.manifest, workers=args.workers
        ).checks()
    return report(checks)
