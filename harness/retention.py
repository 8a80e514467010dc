"""Retention: delete expired backup sets per kind, and never the ones that must stay.

Sets live under ``backups/<kind>/<name>``: an object set (``<name>/`` plus
``<name>.manifest.json`` beside it), a database set (``<name>/`` with ``manifest.json``
inside) or a single dated file (``backups/database/20250131-app.sql``). A set's date is
taken from its key (the first ``YYYYMMDD`` in its name), never from object timestamps (a
copied or restored backup has new ones).

A set is deleted only when all of these hold, and the plan says which failed when not:

- its kind has a retention period (database 30 days, images 90, kv 30, code 365 by
  default) and it is older than that;
- it is not one of the newest ``keep_newest`` (default 3) *complete* sets of its kind (a
  set with a manifest, or a single file): a run of failed backups never leaves zero good
  ones;
- none of its objects is under an Object Lock retention date or a legal hold;
- and of an object set, bytes that a kept set's manifest still points at (incremental sets
  reuse unchanged objects of earlier ones) are kept; only the rest is deleted.

:func:`plan_retention` changes nothing (the dry run, the default of ``drill retention``).
:func:`apply_retention` plans again, refuses to delete anything the fresh plan keeps
(:class:`~harness.errors.RetentionRefused`), deletes manifests first (so a half-deleted set
never looks complete), then the objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from harness.errors import ConfigError, ManifestError, RetentionRefused
from harness.objects.manifest import MANIFEST_SUFFIX, ROOT, read_object_manifest, stored_key
from harness.storage.base import ObjectStore

DEFAULT_DAYS: dict[str, int] = {"database": 30, "images": 90, "kv": 30, "code": 365}
DEFAULT_KEEP_NEWEST = 3
SET_MANIFEST = "manifest.json"  # a database set's manifest, inside its prefix
_DATE = re.compile(r"(?<![0-9])([0-9]{8})(?![0-9])")

LockCheck = Callable[[str], str | None]
"""Key -> what locks it (``COMPLIANCE until ...``), or None when nothing holds it."""


@dataclass(frozen=True)
class BackupSet:
    """One set found in the store."""

    kind: str
    name: str
    day: date | None
    keys: tuple[str, ...]
    complete: bool
    has_object_manifest: bool


@dataclass(frozen=True)
class Decision:
    """What retention does with one set, and why."""

    set: BackupSet
    action: Literal["delete", "keep"]
    reason: str
    delete_keys: tuple[str, ...] = ()

    def line(self) -> str:
        """``delete images/20250101: 120 days old, over 90 (42 objects)``."""
        count = f" ({len(self.delete_keys)} objects)" if self.action == "delete" else ""
        return f"{self.action:<6} {self.set.kind}/{self.set.name}: {self.reason}{count}"


@dataclass(frozen=True)
class RetentionPlan:
    """Every set and its decision; nothing is deleted by making one."""

    today: date
    decisions: tuple[Decision, ...]
    days: dict[str, int] = field(default_factory=dict)
    keep_newest: int = DEFAULT_KEEP_NEWEST

    @property
    def deletions(self) -> tuple[Decision, ...]:
        """The decisions to delete."""
        return tuple(d for d in self.decisions if d.action == "delete")

    def render(self) -> str:
        """One line a set, then a summary."""
        lines = [d.line() for d in self.decisions]
        keys = sum(len(d.delete_keys) for d in self.deletions)
        lines.append(
            f"{len(self.deletions)} of {len(self.decisions)} sets to delete ({keys} objects)"
        )
        return "\n".join(lines)


def parse_days(text: str) -> dict[str, int]:
    """``images=90,kv=30`` on top of the defaults.

    Raises:
        ConfigError: a malformed pair or a period that is not a positive number of days.

    """
    days = dict(DEFAULT_DAYS)
    for pair in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = pair.partition("=")
        if not sep or not kind or not value.isdigit() or int(value) < 1:
            raise ConfigError(
                f"retention {pair!r} is not KIND=DAYS with DAYS >= 1 (e.g. images=90)"
            )
        days[kind.strip()] = int(value)
    return days


def find_sets(store: ObjectStore) -> list[BackupSet]:
    """Every set under ``backups/``, grouped from the keys, sorted by kind, date, name."""
    groups: dict[tuple[str, str], list[str]] = {}
    for info in store.list(f"{ROOT}/"):
        parts = info.key.split("/")
        if len(parts) < 3:
            continue
        name = parts[2]
        if len(parts) == 3 and name.endswith(MANIFEST_SUFFIX):
            name = name[: -len(MANIFEST_SUFFIX)]
        groups.setdefault((parts[1], name), []).append(info.key)
    found = []
    for (kind, name), keys in groups.items():
        base = f"{ROOT}/{kind}/{name}"
        object_manifest = f"{base}{MANIFEST_SUFFIX}" in keys
        single = keys == [base]
        complete = object_manifest or single or f"{base}/{SET_MANIFEST}" in keys
        found.append(
            BackupSet(kind, name, _day(name), tuple(sorted(keys)), complete, object_manifest)
        )
    return sorted(found, key=lambda s: (s.kind, s.day or date.min, s.name))


def plan_retention(
    store: ObjectStore,
    *,
    today: date,
    days: dict[str, int] | None = None,
    keep_newest: int = DEFAULT_KEEP_NEWEST,
    locked: LockCheck | None = None,
) -> RetentionPlan:
    """Decide, set by set, what to delete (see the module docstring); delete nothing.

    Args:
        store: the backup store.
        today: the date ages are counted from.
        days: retention period per kind (default :data:`DEFAULT_DAYS`).
        keep_newest: complete sets of each kind always kept (at least 1).
        locked: tells which keys are under Object Lock (None: the store has no locks).

    Raises:
        ConfigError: ``keep_newest`` below 1.
        StorageError: the store cannot be listed.

    """
    if keep_newest < 1:
        raise ConfigError(f"keep_newest must be at least 1 (got {keep_newest})")
    days = dict(DEFAULT_DAYS if days is None else days)
    sets = find_sets(store)
    newest: set[tuple[str, str]] = set()
    for kind in {s.kind for s in sets}:
        complete = [s for s in sets if s.kind == kind and s.complete and s.day is not None]
        complete.sort(key=lambda s: (s.day or date.min, s.name), reverse=True)
        newest |= {(s.kind, s.name) for s in complete[:keep_newest]}
    decisions = [_first_pass(s, today, days, keep_newest, newest, locked) for s in sets]
    decisions = _keep_referenced(store, decisions)
    return RetentionPlan(today, tuple(decisions), days, keep_newest)


def apply_retention(
    store: ObjectStore,
    plan: RetentionPlan,
    *,
    locked: LockCheck | None = None,
    deleted: Callable[[str], None] | None = None,
) -> int:
    """Delete what ``plan`` says, after proving a fresh plan agrees; return keys deleted.

    Raises:
        RetentionRefused: ``plan`` deletes a key that a fresh plan keeps (the newest sets, a
            locked object, bytes a kept set needs, a set that is not yet old enough).
        StorageError: a deletion failed (what was deleted before it stays deleted).

    """
    fresh = plan_retention(
        store, today=plan.today, days=plan.days, keep_newest=plan.keep_newest, locked=locked
    )
    allowed = {k for d in fresh.deletions for k in d.delete_keys}
    why = {(d.set.kind, d.set.name): d.reason for d in fresh.decisions}
    for decision in plan.deletions:
        refused = [k for k in decision.delete_keys if k not in allowed]
        if refused:
            s = decision.set
            raise RetentionRefused(
                f"refusing to delete {s.kind}/{s.name} ({refused[0]}): "
                f"{why.get((s.kind, s.name), 'it is not a set retention knows')}"
            )
    count = 0
    for decision in plan.deletions:
        # Manifests first: a set interrupted half-way must not look complete.
        ordered = sorted(decision.delete_keys, key=lambda k: not _is_manifest(k))
        for key in ordered:
            store.delete(key)
            count += 1
            if deleted is not None:
                deleted(key)
    return count


def _first_pass(
    s: BackupSet,
    today: date,
    days: dict[str, int],
    keep_newest: int,
    newest: set[tuple[str, str]],
    locked: LockCheck | None,
) -> Decision:
    if s.kind not in days:
        return Decision(s, "keep", f"no retention period for kind {s.kind!r} (never deleted)")
    if s.day is None:
        return Decision(s, "keep", "no YYYYMMDD date in its key")
    age = (today - s.day).days
    if (s.kind, s.name) in newest:
        return Decision(s, "keep", f"one of the newest {keep_newest} complete {s.kind} sets")
    if age <= days[s.kind]:
        return Decision(s, "keep", f"{age} days old, within {days[s.kind]}")
    if locked is not None:
        for key in s.keys:
            lock = locked(key)
            if lock is not None:
                return Decision(s, "keep", f"{key} is under Object Lock ({lock})")
    state = "" if s.complete else ", incomplete"
    return Decision(s, "delete", f"{age} days old, over {days[s.kind]}{state}", s.keys)


def _keep_referenced(store: ObjectStore, decisions: list[Decision]) -> list[Decision]:
    """Drop from the deletions the objects that kept object sets still point at."""
    needed: set[str] = set()
    unreadable: dict[str, str] = {}
    for d in decisions:
        if d.action != "keep" or not d.set.has_object_manifest:
            continue
        try:
            m = read_object_manifest(store, d.set.kind, d.set.name).manifest
        except (ManifestError, ConfigError) as exc:
            unreadable.setdefault(d.set.kind, f"{d.set.kind}/{d.set.name}: {exc}")
            continue
        needed |= {stored_key(m.kind, e.stored_in, e.key) for e in m.entries}
    out = []
    for d in decisions:
        if d.action != "delete":
            out.append(d)
        elif d.set.kind in unreadable:
            reason = (
                f"cannot tell what kept sets need (unreadable manifest {unreadable[d.set.kind]})"
            )
            out.append(Decision(d.set, "keep", reason))
        else:
            keep = [k for k in d.delete_keys if k in needed]
            if len(keep) == len(d.delete_keys):
                note = f"{d.reason}; all {len(keep)} objects still used by newer sets"
                out.append(Decision(d.set, "keep", note))
            elif keep:
                rest = tuple(k for k in d.delete_keys if k not in needed)
                note = f"{d.reason}; {len(keep)} objects kept, still used by newer sets"
                out.append(Decision(d.set, "delete", note, rest))
            else:
                out.append(d)
    return out


def _day(name: str) -> date | None:
    match = _DATE.search(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


def _is_manifest(key: str) -> bool:
    return key.endswith(MANIFEST_SUFFIX) or key.endswith(f"/{SET_MANIFEST}")
