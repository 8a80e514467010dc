"""The whole stack at one date: back up D1, KV and R2 together, restore all three to one set (C7).

A stack backup takes one set id free in every kind (``database``, ``kv``, ``images``), so
the three sets of one backup share their date. A stack restore takes every store back to the
same set id, by default the newest one all three kinds hold: restoring D1 from Monday and R2
from Sunday gives spots whose images do not exist (the guide's "partial restore"
inconsistency), which the drills' cross-checks catch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.cloudflare import d1, kv_sets, r2_sets, sets
from harness.cloudflare.kv import WorkersKv
from harness.cloudflare.r2 import R2Bucket
from harness.cloudflare.wrangler import Wrangler
from harness.errors import ObjectNotFound
from harness.storage.base import ObjectStore
from harness.verify.checks import CheckResult


@dataclass(frozen=True)
class StackBackup:
    """The three sets of one stack backup, all with the same set id."""

    set_id: str
    d1: d1.D1Backup
    kv: kv_sets.KvBackup
    r2: r2_sets.R2Backup
    seconds: float


def back_up_stack(
    w: Wrangler,
    *,
    database: str,
    kv: WorkersKv,
    bucket: R2Bucket,
    store: ObjectStore,
    workdir: Path,
    kind: str = r2_sets.DEFAULT_KIND,
    now: datetime | None = None,
) -> StackBackup:
    """Back up the database, the namespace and the bucket under one set id.

    Raises:
        ToolFailed, StorageError, BackupError: see the three backups; a failure leaves the
            sets already published complete and the failed one without a manifest.

    """
    started = time.monotonic()
    set_id = sets.common_set_id(store, [d1.KIND, kv_sets.KIND, kind], now)
    db = d1.back_up(w, [database], store, workdir=workdir, set_id=set_id)
    keys = kv_sets.back_up(kv, store, workdir=workdir, set_id=set_id)
    objects = r2_sets.back_up(bucket, store, workdir=workdir, kind=kind, set_id=set_id)
    return StackBackup(set_id, db, keys, objects, time.monotonic() - started)


def latest_common_set(store: ObjectStore, *, kind: str = r2_sets.DEFAULT_KIND) -> str:
    """The newest set id that D1, KV and R2 backups all have.

    Raises:
        ObjectNotFound: no date has all three.

    """
    common = sets.sets_in_common(store, [d1.KIND, kv_sets.KIND, kind])
    if not common:
        raise ObjectNotFound(
            f"no backup date has all of {d1.KIND}, {kv_sets.KIND} and {kind} in "
            f"{store.location}: a stack restore needs one set of each from the same date"
        )
    return common[-1]


@dataclass(frozen=True)
class StackRestore:
    """The three restores of one stack restore, all from the same set id."""

    set_id: str
    d1: d1.D1Restore
    kv: kv_sets.KvRestore
    r2: r2_sets.R2Restore
    seconds: float

    @property
    def checks(self) -> list[CheckResult]:
        """Every check of the three restores, and one that they used the same date."""
        same = {self.d1.set_id, self.kv.set_id, self.r2.set_id} == {self.set_id}
        date = CheckResult(
            "one backup date",
            ok=same,
            critical=True,
            detail=f"D1, KV and R2 all restored from set {self.set_id}"
            if same
            else f"D1 {self.d1.set_id}, KV {self.kv.set_id}, R2 {self.r2.set_id}",
        )
        return [date, *self.d1.checks, *self.kv.checks, *self.r2.checks]


def restore_stack(
    w: Wrangler,
    *,
    database: str,
    into: str,
    kv: WorkersKv,
    bucket: R2Bucket,
    store: ObjectStore,
    workdir: Path,
    set_id: str | None = None,
    kind: str = r2_sets.DEFAULT_KIND,
) -> StackRestore:
    """Restore the database (into the empty ``into``), the namespace and the bucket to one date.

    Args:
        w: the project.
        database: the database's name in the sets.
        into: the empty database to restore it into (point the binding at it afterwards).
        kv: the namespace.
        bucket: the bucket.
        store: the backup store.
        workdir: scratch space.
        set_id: the date (default: the newest all three kinds have).
        kind: the R2 sets' kind.

    Raises:
        ObjectNotFound: no common date, or a kind lacks ``set_id``.
        ManifestError, RestoreError, ToolFailed, StorageError: see the three restores.

    """
    started = time.monotonic()
    chosen = set_id or latest_common_set(store, kind=kind)
    db = d1.restore(w, store, chosen, database, into=into, workdir=workdir)
    keys = kv_sets.restore(kv, store, chosen, workdir=workdir)
    objects = r2_sets.restore(bucket, store, chosen, workdir=workdir, kind=kind)
    return StackRestore(chosen, db, keys, objects, time.monotonic() - started)
