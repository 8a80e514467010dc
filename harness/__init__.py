"""Recovery-drill harness: prove that PostgreSQL and S3 backups actually restore.

The public surface drills and users may rely on is what ``__all__`` lists. Names are imported
on first use, so ``import harness`` (and the ``drill`` command) load only what they touch:
a production host running ``drill backup`` never imports pytest, moto or the providers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.config import DrillConfig, KeepPolicy, PgTarget, RecoveryTargets, S3Target
    from harness.drill import canary, disasters, scenario
    from harness.drill.dataset import invariants, load_lesson_app
    from harness.drill.detect import Detection, detect
    from harness.drill.run import DrillRun
    from harness.errors import (
        BackupError,
        ConfigError,
        ConnectError,
        DrillError,
        ObjectNotFound,
        ProviderUnavailable,
        RestoreError,
        ServerError,
        ServerStartError,
        StorageAuthError,
        StorageError,
        StorageUnreachable,
        ToolError,
        ToolFailed,
        ToolNotFound,
        ToolTimeout,
        UnsafeTargetError,
        VerificationFailed,
        WaitTimeout,
    )
    from harness.infra.pg_server import ClusterTemplate, ServerSettings, ThrowawayServer
    from harness.infra.providers import PgServer, Provider, make_provider
    from harness.pg.binaries import PgBinaries, find_binaries
    from harness.pg.dump import DumpResult, dump_database, restore_dump
    from harness.pg.sql import (
        connect,
        count_rows,
        create_database,
        database_exists,
        drop_database,
        run_sql_file,
        server_version,
    )
    from harness.sets.check import SetCheck, check_set
    from harness.sets.location import Location, parse_location
    from harness.sets.manifest import Manifest
    from harness.sets.restore import RestorePlan, RestoreResult, restore_set
    from harness.sets.table_restore import TableRestoreResult, restore_table
    from harness.sets.take import BackupResult, take_backup
    from harness.storage.base import ObjectInfo, ObjectStore
    from harness.storage.digest import sha256_file
    from harness.storage.local import LocalObjectStore
    from harness.storage.s3 import S3ObjectStore, check_endpoint
    from harness.verify.checks import CheckResult
    from harness.verify.compare import Comparison, Fingerprint, compare, take_fingerprint
    from harness.verify.locate import RowDifferences, locate_differences
    from harness.verify.rls import RlsBehaviour, behaviour_check, rls_behaviour

# public name -> the module that defines it
_WHERE: dict[str, str] = {
    "BackupError": "harness.errors",
    "BackupResult": "harness.sets.take",
    "CheckResult": "harness.verify.checks",
    "ClusterTemplate": "harness.infra.pg_server",
    "Comparison": "harness.verify.compare",
    "ConfigError": "harness.errors",
    "ConnectError": "harness.errors",
    "Detection": "harness.drill.detect",
    "DrillConfig": "harness.config",
    "DrillError": "harness.errors",
    "DrillRun": "harness.drill.run",
    "DumpResult": "harness.pg.dump",
    "Fingerprint": "harness.verify.compare",
    "KeepPolicy": "harness.config",
    "LocalObjectStore": "harness.storage.local",
    "Location": "harness.sets.location",
    "Manifest": "harness.sets.manifest",
    "ObjectInfo": "harness.storage.base",
    "ObjectNotFound": "harness.errors",
    "ObjectStore": "harness.storage.base",
    "PgBinaries": "harness.pg.binaries",
    "PgServer": "harness.infra.providers",
    "PgTarget": "harness.config",
    "Provider": "harness.infra.providers",
    "ProviderUnavailable": "harness.errors",
    "RecoveryTargets": "harness.config",
    "RestoreError": "harness.errors",
    "RestorePlan": "harness.sets.restore",
    "RestoreResult": "harness.sets.restore",
    "RlsBehaviour": "harness.verify.rls",
    "RowDifferences": "harness.verify.locate",
    "S3ObjectStore": "harness.storage.s3",
    "S3Target": "harness.config",
    "ServerError": "harness.errors",
    "ServerSettings": "harness.infra.pg_server",
    "ServerStartError": "harness.errors",
    "SetCheck": "harness.sets.check",
    "StorageAuthError": "harness.errors",
    "StorageError": "harness.errors",
    "StorageUnreachable": "harness.errors",
    "TableRestoreResult": "harness.sets.table_restore",
    "ThrowawayServer": "harness.infra.pg_server",
    "ToolError": "harness.errors",
    "ToolFailed": "harness.errors",
    "ToolNotFound": "harness.errors",
    "ToolTimeout": "harness.errors",
    "UnsafeTargetError": "harness.errors",
    "VerificationFailed": "harness.errors",
    "WaitTimeout": "harness.errors",
    "behaviour_check": "harness.verify.rls",
    "canary": "harness.drill",
    "check_endpoint": "harness.storage.s3",
    "check_set": "harness.sets.check",
    "compare": "harness.verify.compare",
    "connect": "harness.pg.sql",
    "count_rows": "harness.pg.sql",
    "create_database": "harness.pg.sql",
    "database_exists": "harness.pg.sql",
    "detect": "harness.drill.detect",
    "disasters": "harness.drill",
    "drop_database": "harness.pg.sql",
    "dump_database": "harness.pg.dump",
    "find_binaries": "harness.pg.binaries",
    "invariants": "harness.drill.dataset",
    "load_lesson_app": "harness.drill.dataset",
    "locate_differences": "harness.verify.locate",
    "make_provider": "harness.infra.providers",
    "parse_location": "harness.sets.location",
    "restore_dump": "harness.pg.dump",
    "restore_set": "harness.sets.restore",
    "restore_table": "harness.sets.table_restore",
    "rls_behaviour": "harness.verify.rls",
    "run_sql_file": "harness.pg.sql",
    "scenario": "harness.drill",
    "server_version": "harness.pg.sql",
    "sha256_file": "harness.storage.digest",
    "take_backup": "harness.sets.take",
    "take_fingerprint": "harness.verify.compare",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # a few public names are modules of their own (harness.drill.canary, ...)
    module = importlib.import_module(where)
    value = getattr(module, name, None) or importlib.import_module(f"{where}.{name}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BackupError",
    "BackupResult",
    "CheckResult",
    "ClusterTemplate",
    "Comparison",
    "ConfigError",
    "ConnectError",
    "Detection",
    "DrillConfig",
    "DrillError",
    "DrillRun",
    "DumpResult",
    "Fingerprint",
    "KeepPolicy",
    "LocalObjectStore",
    "Location",
    "Manifest",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "PgBinaries",
    "PgServer",
    "PgTarget",
    "Provider",
    "ProviderUnavailable",
    "RecoveryTargets",
    "RestoreError",
    "RestorePlan",
    "RestoreResult",
    "RlsBehaviour",
    "RowDifferences",
    "S3ObjectStore",
    "S3Target",
    "ServerError",
    "ServerSettings",
    "ServerStartError",
    "SetCheck",
    "StorageAuthError",
    "StorageError",
    "StorageUnreachable",
    "TableRestoreResult",
    "ThrowawayServer",
    "ToolError",
    "ToolFailed",
    "ToolNotFound",
    "ToolTimeout",
    "UnsafeTargetError",
    "VerificationFailed",
    "WaitTimeout",
    "behaviour_check",
    "canary",
    "check_endpoint",
    "check_set",
    "compare",
    "connect",
    "count_rows",
    "create_database",
    "database_exists",
    "detect",
    "disasters",
    "drop_database",
    "dump_database",
    "find_binaries",
    "invariants",
    "load_lesson_app",
    "locate_differences",
    "make_provider",
    "parse_location",
    "restore_dump",
    "restore_set",
    "restore_table",
    "rls_behaviour",
    "run_sql_file",
    "scenario",
    "server_version",
    "sha256_file",
    "take_backup",
    "take_fingerprint",
]
