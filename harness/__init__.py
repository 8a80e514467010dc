"""Recovery-drill harness: prove that PostgreSQL and S3 backups actually restore.

The public surface drills and users may rely on is what ``__all__`` lists.
"""

from harness import canary, disasters, scenario
from harness.backup import BackupResult, take_backup
from harness.backup_set import Location, Manifest, parse_location
from harness.checks import CheckResult
from harness.config import DrillConfig, KeepPolicy, PgTarget, RecoveryTargets, S3Target
from harness.dataset import invariants, load_lesson_app
from harness.detect import Detection, detect
from harness.drill import DrillRun
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
from harness.fingerprint.compare import Comparison, Fingerprint, compare, take_fingerprint
from harness.fingerprint.locate import RowDifferences, locate_differences
from harness.fingerprint.rls import RlsBehaviour, behaviour_check, rls_behaviour
from harness.pg.binaries import PgBinaries, find_binaries
from harness.pg.dump import DumpResult, dump_database, restore_dump
from harness.pg.server import ClusterTemplate, ServerSettings, ThrowawayServer
from harness.pg.sql import (
    connect,
    count_rows,
    create_database,
    database_exists,
    drop_database,
    run_sql_file,
    server_version,
)
from harness.providers import PgServer, Provider, make_provider
from harness.restore import RestorePlan, RestoreResult, restore_set
from harness.set_check import SetCheck, check_set
from harness.storage.base import ObjectInfo, ObjectStore
from harness.storage.local import LocalObjectStore
from harness.storage.s3 import S3ObjectStore, check_endpoint
from harness.table_restore import TableRestoreResult, restore_table
from harness.verify_files import sha256_file

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
