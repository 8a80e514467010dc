"""``drill repo backup|verify``: code repositories as archived git mirrors in dated sets.

Examples::

    drill repo backup --url https://git.example.com/team/app.git --to s3://backups
    drill repo verify --from s3://backups --date 20250131 --source https://git.example.com/...
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_OK, s3_options, workdir, workdir_option
from harness.cli.store_common import backup_store, report, signing_key
from harness.errors import ObjectNotFound
from harness.objects.manifest import list_set_ids
from harness.repo.mirror import backup_repo, verify_repo


def add_commands(sub: Any) -> None:
    """Add ``repo`` and its subcommands to the ``drill`` command."""
    repo = sub.add_parser("repo", help="back up and verify code repositories (git mirrors)")
    cmds = repo.add_subparsers(dest="repo_command", required=True)
    backup = cmds.add_parser("backup", help="git clone --mirror, archive, new dated set")
    backup.add_argument("--url", required=True, help="the repository (no credentials in it)")
    backup.add_argument("--to", dest="backup", required=True, metavar="s3://BUCKET|DIR")
    backup.set_defaults(run=run_backup)
    verify = cmds.add_parser("verify", help="restore a set and run git fsck, compare refs")
    verify.add_argument("--from", dest="backup", required=True, metavar="s3://BUCKET|DIR")
    verify.add_argument("--date", help="YYYYMMDD (newest set of that day) or a set id")
    verify.add_argument("--source", help="also compare every ref with this repository now")
    verify.set_defaults(run=run_verify)
    for parser in (backup, verify):
        parser.add_argument("--kind", default="code", help="what the sets hold (default: code)")
        workdir_option(parser, "the mirror is unpacked")
        s3_options(parser)


def run_backup(args: argparse.Namespace) -> int:
    """``drill repo backup``."""
    with tempfile.TemporaryDirectory(dir=workdir(args), prefix="drill-repo-") as tmp:
        result = backup_repo(
            args.url, backup_store(args, args.backup), workdir=Path(tmp), kind=args.kind,
            signing_key=signing_key(),
        )  # fmt: skip
    print(
        f"set {args.kind}/{result.manifest.set_id}: {len(result.refs)} refs, "
        f"{result.manifest.total_size} bytes in {result.seconds:.1f} s"
    )
    print(f"manifest: {result.manifest_key} (sha256 {result.manifest.digest})")
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    """``drill repo verify``: exit 1 when fsck fails or a ref differs."""
    store = backup_store(args, args.backup)
    ids = [i for i in list_set_ids(store, args.kind) if not args.date or i[:8] == args.date[:8]]
    if args.date and len(args.date) > 8:
        ids = [i for i in ids if i == args.date]
    if not ids:
        raise ObjectNotFound(f"no complete {args.kind} set in {args.backup}")
    with tempfile.TemporaryDirectory(dir=workdir(args), prefix="drill-repo-") as tmp:
        checks = verify_repo(
            store, ids[-1], Path(tmp), kind=args.kind, source=args.source,
            signing_key=signing_key(),
        )  # fmt: skip
    return report(checks)
