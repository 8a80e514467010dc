"""``drill d1``, ``drill cf-kv`` and ``drill r2``: Cloudflare backups from the command line.

::

    drill d1 export DATABASE --to DIR|s3://bucket         a dated set: export + manifest
    drill d1 check (FILE | --from DIR|s3://bucket [--date D] [--database DB])
    drill d1 import --from DIR|s3://bucket [--date D] --database DB --into NEW_DB
    drill cf-kv backup (--binding B | --namespace-id ID) --to DIR|s3://bucket
    drill cf-kv restore (--binding B | --namespace-id ID) --from ... [--date D] [--namespace N]
    drill r2 backup BUCKET --to DIR|s3://bucket [--kind images]
    drill r2 restore BUCKET --from DIR|s3://bucket [--date D] [--kind images]

Every command acts on the wrangler project in ``--project`` (default: the current
directory; ``--config`` names another ``wrangler.toml``) and on its local state, or with
``--remote`` on the Cloudflare account (``CLOUDFLARE_API_TOKEN`` in the environment; R2
through its S3 API with ``CLOUDFLARE_ACCOUNT_ID``, ``R2_ACCESS_KEY_ID``,
``R2_SECRET_ACCESS_KEY``). Sets live at the root of the destination
(``backups/<kind>/<date>/``); ``--date`` picks one (default: the newest).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.cli.common import EXIT_FAILED, EXIT_OK, location, s3_options, workdir
from harness.cloudflare import d1, kv_sets, r2_sets
from harness.cloudflare.bridge import Bridge
from harness.cloudflare.d1_export import check_export
from harness.cloudflare.kv import WorkersKv
from harness.cloudflare.r2 import BridgeBucket, R2Bucket, S3ApiBucket
from harness.cloudflare.wrangler import Wrangler, find_wrangler
from harness.errors import ConfigError, ObjectNotFound
from harness.objects.manifest import list_set_ids, require_set_id
from harness.storage.base import ObjectStore
from harness.verify.checks import CheckResult, render


def add_commands(sub: Any) -> None:
    """Add ``d1``, ``cf-kv`` and ``r2`` to the ``drill`` subparsers ``sub``."""
    d1_cmd = sub.add_parser("d1", help="Cloudflare D1: export, check, import")
    d1_sub = d1_cmd.add_subparsers(dest="d1_command", required=True)
    export = _command(d1_sub, "export", "export a database into a dated backup set", _d1_export)
    export.add_argument("database", help="database name (or binding) in wrangler.toml")
    export.add_argument("--to", required=True, metavar="DIR|s3://bucket")
    check = _command(d1_sub, "check", "check an export without restoring it", _d1_check)
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", type=Path, help="an export file")
    source.add_argument("--from", dest="source", metavar="DIR|s3://bucket")
    check.add_argument("--date", help="the set (YYYYMMDD[-HHMMSS]; default: the newest)")
    check.add_argument("--database", help="only this database of the set")
    imp = _command(d1_sub, "import", "restore a set's export into an empty database", _d1_import)
    imp.add_argument("--from", dest="source", required=True, metavar="DIR|s3://bucket")
    imp.add_argument("--date", help="the set (default: the newest)")
    imp.add_argument("--database", required=True, help="the database as the set names it")
    imp.add_argument("--into", required=True, help="an empty database to restore into")

    kv_cmd = sub.add_parser("cf-kv", help="Cloudflare Workers KV: backup, restore")
    kv_sub = kv_cmd.add_subparsers(dest="kv_command", required=True)
    backup = _command(kv_sub, "backup", "export every key into a dated set", _kv_backup)
    _namespace(backup)
    backup.add_argument("--to", required=True, metavar="DIR|s3://bucket")
    restore = _command(kv_sub, "restore", "write a set's keys back, then verify", _kv_restore)
    _namespace(restore)
    restore.add_argument("--from", dest="source", required=True, metavar="DIR|s3://bucket")
    restore.add_argument("--date", help="the set (default: the newest)")
    restore.add_argument("--namespace", help="the namespace as the set names it")

    r2_cmd = sub.add_parser("r2", help="Cloudflare R2: backup, restore")
    r2_sub = r2_cmd.add_subparsers(dest="r2_command", required=True)
    for name, run, helptext in (
        ("backup", _r2_backup, "copy every object into a dated set"),
        ("restore", _r2_restore, "put a set's objects back, then verify every hash"),
    ):
        cmd = _command(r2_sub, name, helptext, run)
        cmd.add_argument("bucket", help="the bucket's name")
        cmd.add_argument("--kind", default=r2_sets.DEFAULT_KIND, help="set kind (images)")
        if name == "backup":
            cmd.add_argument("--to", required=True, metavar="DIR|s3://bucket")
        else:
            cmd.add_argument("--from", dest="source", required=True, metavar="DIR|s3://bucket")
            cmd.add_argument("--date", help="the set (default: the newest)")


def _command(sub: Any, name: str, helptext: str, run: Any) -> argparse.ArgumentParser:
    cmd: argparse.ArgumentParser = sub.add_parser(name, help=helptext)
    cmd.add_argument("--project", type=Path, default=Path(), help="the wrangler project dir")
    cmd.add_argument("--config", type=Path, help="its configuration file (wrangler.toml)")
    cmd.add_argument(
        "--remote",
        action="store_true",
        help="act on the Cloudflare account (token in CLOUDFLARE_API_TOKEN), not local state",
    )
    cmd.add_argument("--workdir", type=Path, metavar="DIR", help="scratch space (default: temp)")
    s3_options(cmd)
    cmd.set_defaults(run=run)
    return cmd


def _namespace(cmd: argparse.ArgumentParser) -> None:
    which = cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("--binding", help="the namespace's binding in wrangler.toml")
    which.add_argument("--namespace-id", dest="namespace_id", help="or its id")


def _wrangler(args: argparse.Namespace) -> Wrangler:
    project: Path = args.project
    if not project.is_dir():
        raise ConfigError(f"--project {project} is not a directory")
    config = args.config or (project / "wrangler.toml")
    if not config.is_file():
        raise ConfigError(f"{config} does not exist: run in a wrangler project or pass --config")
    return Wrangler(
        find_wrangler([project]),
        project.resolve(),
        remote=args.remote,
        config=args.config.resolve() if args.config else None,
    )


def _store(args: argparse.Namespace, uri: str) -> ObjectStore:
    where = location(args, uri)
    if where.prefix:
        raise ConfigError(
            f"{uri}: Cloudflare sets live at the root of their destination "
            "(backups/<kind>/<date>/); name the bucket without a prefix"
        )
    return where.store()


@contextmanager
def _scratch(args: argparse.Namespace) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="drill-cf-", dir=workdir(args)) as tmp:
        yield Path(tmp)


def _date(store: ObjectStore, kind: str, given: str | None) -> str:
    if given:
        return require_set_id(given)
    ids = list_set_ids(store, kind)
    if not ids:
        raise ObjectNotFound(f"no complete {kind} set in {store.location}")
    return ids[-1]


def _report(checks: list[CheckResult] | tuple[CheckResult, ...]) -> int:
    print(render(checks))
    failed = [c for c in checks if c.critical and not c.ok]
    return EXIT_FAILED if failed else EXIT_OK


def _d1_export(args: argparse.Namespace) -> int:
    w, store = _wrangler(args), _store(args, args.to)
    with _scratch(args) as tmp:
        result = d1.back_up(w, [d1.require_name(args.database)], store, workdir=tmp)
    print(result.describe())
    print(f"manifest {result.manifest_key} (sha256 {result.manifest.digest})")
    return EXIT_OK


def _d1_check(args: argparse.Namespace) -> int:
    if args.file is not None:
        if not args.file.is_file():
            raise ConfigError(f"{args.file} is not a file")
        return _report(check_export(args.file).checks)
    store = _store(args, args.source)
    set_id = _date(store, d1.KIND, args.date)
    only = [args.database] if args.database else []
    with _scratch(args) as tmp:
        results = d1.check_backup(store, set_id, workdir=tmp, databases=only)
    if not results:
        raise ObjectNotFound(f"set {d1.KIND}/{set_id} holds no database {args.database}")
    checks = []
    for database, result in sorted(results.items()):
        checks += [
            CheckResult(f"{database}: {c.name}", c.ok, c.critical, c.detail) for c in result.checks
        ]
    print(f"set {d1.KIND}/{set_id}")
    return _report(checks)


def _d1_import(args: argparse.Namespace) -> int:
    w, store = _wrangler(args), _store(args, args.source)
    set_id = _date(store, d1.KIND, args.date)
    with _scratch(args) as tmp:
        result = d1.restore(
            w, store, set_id, args.database, into=d1.require_name(args.into), workdir=tmp
        )
    print(f"{args.database} from set {set_id} restored into {args.into} in {result.seconds:.1f} s")
    code = _report(result.checks)
    if code == EXIT_OK:
        print(f"point the application's binding at {args.into} (database_name/database_id)")
    return code


def _kv(args: argparse.Namespace, w: Wrangler, tmp: Path) -> WorkersKv:
    return WorkersKv(w, workdir=tmp, binding=args.binding, namespace_id=args.namespace_id)


def _kv_backup(args: argparse.Namespace) -> int:
    w, store = _wrangler(args), _store(args, args.to)
    with _scratch(args) as tmp:
        result = kv_sets.back_up(_kv(args, w, tmp), store, workdir=tmp)
    print(
        f"set {kv_sets.KIND}/{result.manifest.set_id}: {len(result.entries)} keys with "
        f"{result.wrangler_calls} wrangler calls in {result.seconds:.1f} s"
    )
    return EXIT_OK


def _kv_restore(args: argparse.Namespace) -> int:
    w, store = _wrangler(args), _store(args, args.source)
    set_id = _date(store, kv_sets.KIND, args.date)
    with _scratch(args) as tmp:
        result = kv_sets.restore(
            _kv(args, w, tmp), store, set_id, workdir=tmp, namespace=args.namespace
        )
    print(
        f"set {kv_sets.KIND}/{set_id}: {result.written} keys written, {result.expired} expired "
        f"since the backup and skipped, {result.wrangler_calls} wrangler calls"
    )
    return _report(result.checks)


@contextmanager
def _bucket(args: argparse.Namespace, tmp: Path) -> Iterator[R2Bucket]:
    if args.remote:
        yield S3ApiBucket.from_environment(args.bucket)
        return
    with Bridge(_wrangler(args), [args.bucket], workdir=tmp / "bridge") as bridge:
        yield BridgeBucket(bridge, args.bucket)


def _r2_backup(args: argparse.Namespace) -> int:
    store = _store(args, args.to)
    with _scratch(args) as tmp, _bucket(args, tmp) as bucket:
        result = r2_sets.back_up(bucket, store, workdir=tmp, kind=args.kind)
    print(result.describe())
    return EXIT_OK


def _r2_restore(args: argparse.Namespace) -> int:
    store = _store(args, args.source)
    set_id = _date(store, args.kind, args.date)
    with _scratch(args) as tmp, _bucket(args, tmp) as bucket:
        result = r2_sets.restore(bucket, store, set_id, workdir=tmp, kind=args.kind)
    print(
        f"set {args.kind}/{set_id}: {result.uploaded} objects uploaded, {result.unchanged} "
        f"unchanged, in {result.seconds:.1f} s"
    )
    return _report(result.checks)
