"""``drill kv backup|restore|verify``: key-value stores (Redis) through dated sets.

The Redis password comes from ``DRILL_REDIS_PASSWORD`` (never the URL). Examples::

    drill kv backup --redis redis://10.0.0.5:6379/0 --to s3://backups
    drill kv restore --from s3://backups --date 20250131 --to redis://127.0.0.1:6380/0
    drill kv verify --from s3://backups --against redis://127.0.0.1:6380/0
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_OK, s3_options, workdir, workdir_option
from harness.cli.store_common import backup_store, env, report, signing_key
from harness.errors import ObjectNotFound
from harness.kv.backup import backup_kv, fetch_export, restore_kv, verify_kv
from harness.kv.redis_store import PASSWORD_ENV, RedisStore, RedisTarget
from harness.objects.manifest import list_set_ids
from harness.verify.checks import CheckResult


def add_commands(sub: Any) -> None:
    """Add ``kv`` and its subcommands to the ``drill`` command."""
    kv = sub.add_parser("kv", help="back up, restore and verify a key-value store (Redis)")
    cmds = kv.add_subparsers(dest="kv_command", required=True)
    backup = cmds.add_parser("backup", help="export every key into a new dated set")
    backup.add_argument("--redis", required=True, metavar="redis://HOST:PORT/DB")
    backup.add_argument("--to", dest="backup", required=True, metavar="s3://BUCKET|DIR")
    backup.set_defaults(run=run_backup)
    restore = cmds.add_parser("restore", help="write a set's export into a store and verify it")
    restore.add_argument("--from", dest="backup", required=True, metavar="s3://BUCKET|DIR")
    restore.add_argument("--to", dest="redis", required=True, metavar="redis://HOST:PORT/DB")
    restore.add_argument("--prune", action="store_true", help="delete keys the export lacks")
    restore.set_defaults(run=run_restore)
    verify = cmds.add_parser("verify", help="check a set's export, and a store against it")
    verify.add_argument("--from", dest="backup", required=True, metavar="s3://BUCKET|DIR")
    verify.add_argument("--against", dest="redis", metavar="redis://HOST:PORT/DB")
    verify.set_defaults(run=run_verify)
    for parser in (backup, restore, verify):
        parser.add_argument("--kind", default="kv", help="what the sets hold (default: kv)")
        if parser is not backup:
            parser.add_argument("--date", help="YYYYMMDD (newest set of that day) or a set id")
        workdir_option(parser, "the export is written")
        s3_options(parser)


def _store(url: str) -> RedisStore:
    return RedisStore(RedisTarget.from_url(url, password=env(PASSWORD_ENV)))


def _set_id(args: argparse.Namespace) -> str:
    ids = list_set_ids(backup_store(args, args.backup), args.kind)
    wanted = [i for i in ids if args.date is None or i == args.date or i[:8] == args.date]
    if not wanted:
        raise ObjectNotFound(
            f"no complete {args.kind} set{' for ' + args.date if args.date else ''} in "
            f"{args.backup} (newest: {', '.join(ids[-5:]) or 'none'})"
        )
    return wanted[-1]


def run_backup(args: argparse.Namespace) -> int:
    """``drill kv backup``."""
    with tempfile.TemporaryDirectory(dir=workdir(args), prefix="drill-kv-") as tmp:
        result = backup_kv(
            _store(args.redis),
            backup_store(args, args.backup),
            workdir=Path(tmp),
            kind=args.kind,
            signing_key=signing_key(),
        )
    print(
        f"set {args.kind}/{result.manifest.set_id}: {result.summary.entries} keys from "
        f"{result.summary.source} in {result.seconds:.1f} s"
    )
    print(f"manifest: {result.manifest_key} (sha256 {result.manifest.digest})")
    return EXIT_OK


def run_restore(args: argparse.Namespace) -> int:
    """``drill kv restore``: exit 1 when the store does not match the export afterwards."""
    set_id = _set_id(args)
    store = _store(args.redis)
    with tempfile.TemporaryDirectory(dir=workdir(args), prefix="drill-kv-") as tmp:
        export, summary = fetch_export(
            backup_store(args, args.backup), set_id, Path(tmp), kind=args.kind,
            signing_key=signing_key(),
        )  # fmt: skip
        result = restore_kv(export, store, prune=args.prune)
        print(
            f"restored {result.written} of {summary.entries} keys of {args.kind}/{set_id} "
            f"({result.expired} expired since the backup, {result.pruned} pruned)"
        )
        return report(verify_kv(export, store, extra_is_critical=args.prune).checks())


def run_verify(args: argparse.Namespace) -> int:
    """``drill kv verify``: the export's hash and trailer, and a store when given."""
    set_id = _set_id(args)
    with tempfile.TemporaryDirectory(dir=workdir(args), prefix="drill-kv-") as tmp:
        export, summary = fetch_export(
            backup_store(args, args.backup), set_id, Path(tmp), kind=args.kind,
            signing_key=signing_key(),
        )  # fmt: skip
        checks = [
            CheckResult(
                f"export of {args.kind}/{set_id}",
                ok=True,
                critical=True,
                detail=f"{summary.entries} keys, SHA-256 and trailer match",
            )
        ]
        if args.redis:
            checks += verify_kv(export, _store(args.redis)).checks()
        return report(checks)
