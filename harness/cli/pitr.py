"""``drill pitr`` and ``drill basebackup``: physical sets and point-in-time recovery.

A repository is a directory or an S3 bucket holding ``wal/`` (the WAL archive) and
``base/<name>/`` (physical sets); ``--from`` and ``--to`` name a set as ``DIR/base/NAME`` or
``s3://bucket/base/NAME``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_OK, config_from, dsn_option, s3_options, target
from harness.errors import ConfigError
from harness.pg.binaries import client_tools_for, find_binaries
from harness.pg.sql import server_version
from harness.sets.physical import read_chain, take_base_backup
from harness.sets.pitr import ACTIONS, parse_target, recover
from harness.sets.timelines import parse_timeline
from harness.storage.base import ObjectStore
from harness.storage.local import LocalObjectStore
from harness.storage.s3 import S3ObjectStore

_SET_HELP = "a physical set: DIR/base/NAME or s3://bucket/base/NAME"


def add_commands(sub: Any) -> None:
    """Add ``pitr`` and ``basebackup`` to the ``drill`` command's subcommands."""
    pitr = sub.add_parser("pitr", help="recover a physical set plus archived WAL to a target")
    pitr.add_argument("--from", dest="source", required=True, metavar="SET", help=_SET_HELP)
    pitr.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="TIME|LSN|NAME|XID",
        help="ISO time with offset, HI/LO LSN, xid digits, name:<restore point>, or latest",
    )
    pitr.add_argument(
        "--exclusive", action="store_true", help="stop just before the target, not after it"
    )
    pitr.add_argument(
        "--datadir",
        type=Path,
        help="a new directory for the recovered cluster (kept; data in DIR/server/data)",
    )
    pitr.add_argument("--action", choices=ACTIONS, default="pause")
    pitr.add_argument(
        "--timeline",
        default="current",
        metavar="current|latest|N",
        help="the timeline to recover along: the backup's (current), the newest archived "
        "descendant (latest), or a number",
    )
    s3_options(pitr)
    pitr.set_defaults(run=run_pitr)
    base = sub.add_parser("basebackup", help="take a physical base backup into a repository")
    dsn_option(base)
    base.add_argument("--to", dest="dest", required=True, metavar="SET", help=_SET_HELP)
    base.add_argument(
        "--incremental-from", metavar="NAME", help="an earlier set's NAME (PostgreSQL 17+)"
    )
    s3_options(base)
    base.set_defaults(run=run_basebackup)


def open_set(args: argparse.Namespace, uri: str) -> tuple[ObjectStore, str]:
    """The repository's store and the set's key prefix (``base/NAME``).

    Raises:
        ConfigError: ``uri`` does not end in ``/base/NAME``.

    """
    head, sep, name = uri.rstrip("/").rpartition("/base/")
    if not sep or not name or "/" in name:
        raise ConfigError(f"{uri!r} does not name a physical set; expected {_SET_HELP}")
    if head.startswith("s3://"):
        bucket = head.removeprefix("s3://")
        if not bucket or "/" in bucket:
            raise ConfigError(f"{uri!r}: the repository must be a bucket root ({_SET_HELP})")
        s3 = config_from(args).external_s3_target()
        return S3ObjectStore(s3, bucket), f"base/{name}"
    return LocalObjectStore(Path(head or ".")), f"base/{name}"


def run_pitr(args: argparse.Namespace) -> int:
    """``drill pitr``: recover, report the position reached, stop the server, keep the data."""
    store, prefix = open_set(args, args.source)
    wanted = parse_target(args.target, inclusive=not args.exclusive)
    timeline = parse_timeline(args.timeline)
    major = read_chain(store, prefix)[-1][1].source_major
    binaries = find_binaries(major=major)
    workdir = args.datadir or Path(tempfile.mkdtemp(prefix="drill-pitr-"))
    if args.datadir is not None and args.datadir.exists() and any(args.datadir.iterdir()):
        raise ConfigError(f"{args.datadir} is not empty; name a new directory with --datadir")
    # The drill stack's server machinery, loaded by the one command that runs a server: the
    # other commands stay importable without it.
    from harness.infra.pg_server import ClusterTemplate
    from harness.infra.privilege import choose_identity
    from harness.infra.recovery_server import RecoveryServers

    template = ClusterTemplate(
        binaries, base_dir=workdir / "template-unused", identity=choose_identity()
    )
    # The source's passwords are unknown here: the recovered copy trusts 127.0.0.1 only.
    result = recover(
        store,
        prefix,
        wanted,
        servers=RecoveryServers(template),
        workdir=workdir,
        action=args.action,
        loopback_trust=True,
        timeline=timeline,
    )
    state = "paused at the target (still in recovery)" if result.paused else "promoted"
    print(
        f"recovered {args.source} to {wanted.describe()} in {result.seconds:.1f} s: "
        f"timeline {result.timeline}, LSN {result.lsn}, {result.wal_files} WAL files; {state}"
    )
    result.server.stop()
    print(f"data directory: {result.server.datadir} (stopped; start it with pg_ctl -D)")
    return EXIT_OK


def run_basebackup(args: argparse.Namespace) -> int:
    """``drill basebackup``: a verified physical set, manifest written last."""
    source = target(args)
    store, prefix = open_set(args, args.dest)
    binaries = client_tools_for(int(server_version(source).split(".")[0]))
    incremental = f"base/{args.incremental_from}" if args.incremental_from else None
    with tempfile.TemporaryDirectory(prefix="drill-basebackup-") as tmp:
        backup = take_base_backup(
            source,
            binaries,
            store,
            prefix=prefix,
            workdir=Path(tmp),
            incremental_from=incremental,
        )
    m = backup.manifest
    print(
        f"{m.backup_type} base backup written to {args.dest} in {backup.seconds:.1f} s: "
        f"WAL {m.start_lsn}..{m.stop_lsn} on timeline {m.timeline} (archive: {m.wal_prefix}/)"
    )
    return EXIT_OK
