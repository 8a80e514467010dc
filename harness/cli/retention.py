"""``drill retention [--apply]``: delete expired backup sets, dry run by default.

Prints one line per set: what would be (or was) deleted and why, or why it is kept.
Example::

    drill retention --in s3://backups --days images=90,kv=30 --keep-newest 3 --apply
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from typing import Any

from harness.cli.common import EXIT_OK, progress, s3_options
from harness.cli.store_common import backup_store, bucket
from harness.errors import ConfigError
from harness.retention import (
    DEFAULT_DAYS,
    DEFAULT_KEEP_NEWEST,
    LockCheck,
    apply_retention,
    parse_days,
    plan_retention,
)


def add_commands(sub: Any) -> None:
    """Add ``retention`` to the ``drill`` command."""
    days = ",".join(f"{k}={v}" for k, v in DEFAULT_DAYS.items())
    parser = sub.add_parser("retention", help="delete expired backup sets (dry run by default)")
    parser.add_argument("--in", dest="backup", required=True, metavar="s3://BUCKET|DIR")
    parser.add_argument("--apply", action="store_true", help="delete (default: only print)")
    parser.add_argument("--days", default="", metavar="KIND=DAYS,...", help=f"default {days}")
    parser.add_argument("--keep-newest", type=int, default=DEFAULT_KEEP_NEWEST)
    parser.add_argument("--today", help="count ages from this date (YYYY-MM-DD; default today)")
    s3_options(parser)
    parser.set_defaults(run=run_retention)


def run_retention(args: argparse.Namespace) -> int:
    """``drill retention``: print the plan; with ``--apply`` delete what it says."""
    try:
        today = date.fromisoformat(args.today) if args.today else datetime.now(UTC).date()
    except ValueError as exc:
        raise ConfigError(f"--today {args.today!r} is not a YYYY-MM-DD date") from exc
    store = backup_store(args, args.backup)
    locked: LockCheck | None = None
    if args.backup.startswith("s3://"):
        b = bucket(args, args.backup)
        now = datetime.now(UTC)

        def locked(key: str) -> str | None:
            state = b.lock_state(key)
            return state.describe() if state.held(now) else None

    plan = plan_retention(
        store, today=today, days=parse_days(args.days), keep_newest=args.keep_newest,
        locked=locked,
    )  # fmt: skip
    print(plan.render())
    if not args.apply:
        print("dry run: nothing deleted (pass --apply to delete)")
        return EXIT_OK
    count = apply_retention(store, plan, locked=locked, deleted=lambda k: progress(f"deleted {k}"))
    print(f"deleted {count} objects")
    return EXIT_OK
