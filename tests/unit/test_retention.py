"""Retention: expired sets go, the newest, the locked and what newer sets need stay."""

from datetime import date

import pytest

from harness.errors import ConfigError, RetentionRefused
from harness.objects.manifest import ObjectEntry, ObjectManifest, write_object_manifest
from harness.retention import Decision, RetentionPlan, apply_retention, parse_days, plan_retention
from harness.storage.local import LocalObjectStore

TODAY = date(2025, 6, 30)
SHA = "ab" * 32


def _object_set(store, set_id, keys, stored_in=None):
    entries = []
    for key in keys:
        home = (stored_in or {}).get(key, set_id)
        if home == set_id:
            store.put_bytes(f"backups/images/{set_id}/{key}", b"x")
        entries.append(ObjectEntry(key=key, size=1, sha256=SHA, stored_in=home))
    manifest = ObjectManifest(
        kind="images", set_id=set_id, created_at="2025-01-01T00:00:00+00:00", source="s3://x",
        entries=tuple(entries),
    )  # fmt: skip
    write_object_manifest(store, manifest)


def _database_set(store, set_id):
    store.put_bytes(f"backups/database/{set_id}/dump.custom", b"d")
    store.put_bytes(f"backups/database/{set_id}/manifest.json", b"{}")


@pytest.fixture
def store(tmp_path):
    s = LocalObjectStore(tmp_path)
    for day in ("20250101", "20250201", "20250301", "20250401", "20250620"):
        _database_set(s, day)
    s.put_bytes("backups/database/20241201-app.sql", b"legacy single file")
    s.put_bytes("backups/database/undated/dump.custom", b"?")
    return s


def _actions(plan):
    return {f"{d.set.kind}/{d.set.name}": d.action for d in plan.decisions}


def test_expired_sets_are_deleted_and_the_newest_three_kept(store):
    plan = plan_retention(store, today=TODAY)
    assert _actions(plan) == {
        "database/20241201-app.sql": "delete",
        "database/20250101": "delete",
        "database/20250201": "delete",
        "database/20250301": "keep",  # 121 days old, but one of the newest three
        "database/20250401": "keep",
        "database/20250620": "keep",
        "database/undated": "keep",
    }
    text = plan.render()
    assert "delete database/20250101: 180 days old, over 30 (2 objects)" in text
    assert "keep   database/20250301: one of the newest 3 complete database sets" in text
    assert "no YYYYMMDD date in its key" in text


def test_the_dry_run_deletes_nothing_and_apply_deletes_the_plan(store):
    before = {o.key for o in store.list()}
    plan = plan_retention(store, today=TODAY)
    assert {o.key for o in store.list()} == before
    assert apply_retention(store, plan) == 5
    left = {o.key.split("/")[2] for o in store.list()}
    assert left == {"20250301", "20250401", "20250620", "undated"}


def test_incomplete_sets_do_not_count_among_the_newest(store):
    store.put_bytes("backups/database/20250625/dump.custom", b"interrupted: no manifest")
    plan = plan_retention(store, today=TODAY)
    assert _actions(plan)["database/20250301"] == "keep"
    assert _actions(plan)["database/20250625"] == "keep"  # 5 days old
    assert "within 30" in next(d.reason for d in plan.decisions if d.set.name == "20250625")


def test_locked_sets_are_kept(store):
    locked = {"backups/database/20250101/dump.custom": "COMPLIANCE until 2026-01-01"}
    plan = plan_retention(store, today=TODAY, locked=locked.get)
    decision = next(d for d in plan.decisions if d.set.name == "20250101")
    assert decision.action == "keep"
    assert decision.reason == (
        "backups/database/20250101/dump.custom is under Object Lock (COMPLIANCE until 2026-01-01)"
    )


def test_objects_that_newer_sets_reuse_are_kept(tmp_path):
    store = LocalObjectStore(tmp_path)
    _object_set(store, "20250101", ["a.jpg", "b.jpg"])
    for day in ("20250501", "20250601", "20250620"):
        _object_set(store, day, ["a.jpg", "b.jpg"], stored_in={"a.jpg": "20250101"})
    plan = plan_retention(store, today=TODAY, days=parse_days("images=90"))
    old = next(d for d in plan.decisions if d.set.name == "20250101")
    assert old.action == "delete"
    assert "1 objects kept, still used by newer sets" in old.reason
    apply_retention(store, plan)
    assert store.get_bytes("backups/images/20250101/a.jpg") == b"x"
    assert not store.list("backups/images/20250101/b.jpg")
    assert not store.list("backups/images/20250101.manifest.json")


def test_a_plan_that_would_delete_the_newest_set_is_refused(store):
    plan = plan_retention(store, today=TODAY)
    newest = next(d for d in plan.decisions if d.set.name == "20250620")
    forged = RetentionPlan(
        TODAY, (Decision(newest.set, "delete", "forged", newest.set.keys),), plan.days, 3
    )
    with pytest.raises(RetentionRefused, match=r"20250620.*one of the newest 3 complete"):
        apply_retention(store, forged)
    assert store.list("backups/database/20250620/")


def test_a_plan_that_would_delete_a_locked_set_is_refused(store):
    plan = plan_retention(store, today=TODAY)
    locked = {"backups/database/20250101/manifest.json": "legal hold"}
    with pytest.raises(RetentionRefused, match="under Object Lock \\(legal hold\\)"):
        apply_retention(store, plan, locked=locked.get)
    assert store.list("backups/database/20250101/")


def test_settings_are_checked():
    assert parse_days("images=7")["images"] == 7
    assert parse_days("")["code"] == 365
    with pytest.raises(ConfigError, match="KIND=DAYS"):
        parse_days("images=0")
    with pytest.raises(ConfigError, match="at least 1"):
        plan_retention(LocalObjectStore.__new__(LocalObjectStore), today=TODAY, keep_newest=0)
