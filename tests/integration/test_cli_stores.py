"""``drill objects|kv|repo|retention`` end to end: exit codes, output, secrets from env."""

import pytest

from harness.cli.main import main
from harness.errors import ManifestError
from harness.kv.base import KvEntry
from harness.kv.redis_store import RedisStore
from harness.objects.manifest import ObjectEntry, ObjectManifest, write_object_manifest
from harness.proc import run
from harness.repo.mirror import backup_repo, verify_repo
from harness.storage.local import LocalObjectStore


@pytest.fixture
def s3_env(s3_target, monkeypatch):
    monkeypatch.setenv("DRILL_S3_ACCESS_KEY_ID", s3_target.access_key_id)
    monkeypatch.setenv("DRILL_S3_SECRET_ACCESS_KEY", s3_target.secret_access_key)
    return ["--s3-endpoint", s3_target.endpoint_url]


def test_objects_backup_restore_verify(bucket_factory, s3_env, capsys):
    source, backups, target = bucket_factory(), bucket_factory(), bucket_factory()
    for i in range(5):
        source.client.put_object(Bucket=source.name, Key=f"p/{i}.jpg", Body=b"i" * (i + 1))
    to, frm = f"s3://{backups.name}", f"s3://{source.name}"
    assert main(["objects", "backup", "--from", frm, "--to", to, "--set", "20250101", *s3_env]) == 0
    assert "set images/20250101: 5 objects, 15 bytes; copied 5" in capsys.readouterr().out
    restore = ["objects", "restore", "--from", to, "--to", f"s3://{target.name}", *s3_env]
    assert main([*restore, "--date", "20250101"]) == 0
    assert "ok   bucket" in capsys.readouterr().out
    backups.client.put_object(Bucket=backups.name, Key="backups/images/20250101/p/2.jpg", Body=b"x")
    assert main(["objects", "verify", "--from", to, *s3_env]) == 1
    out = capsys.readouterr().out
    assert "FAIL set images/20250101: every object intact: 4 match; changed: 'p/2.jpg'" in out
    assert main([*restore, "--date", "20240101"]) == 2
    assert "no complete images backup for 20240101" in capsys.readouterr().err


def test_kv_backup_and_restore_take_the_password_from_the_environment(
    redis_server_factory, tmp_path, monkeypatch, capsys
):
    source, target = redis_server_factory("source"), redis_server_factory("target")
    RedisStore(source.target()).write(KvEntry.string(b"k\xff", b"\x00v"))
    monkeypatch.setenv("DRILL_REDIS_PASSWORD", source.password)
    url = f"redis://127.0.0.1:{source.port}/0"
    assert main(["kv", "backup", "--redis", url, "--to", str(tmp_path)]) == 0
    monkeypatch.setenv("DRILL_REDIS_PASSWORD", target.password)
    to = f"redis://127.0.0.1:{target.port}/0"
    assert main(["kv", "restore", "--from", str(tmp_path), "--to", to]) == 0
    out, err = capsys.readouterr()
    assert "restored 1 of 1 keys" in out
    assert source.password not in out + err
    assert target.password not in out + err
    assert RedisStore(target.target()).read(b"k\xff").value == b"\x00v"
    bad = ["kv", "backup", "--redis", f"redis://:{target.password}@127.0.0.1:1/0", "--to", "x"]
    assert main(bad) == 2
    assert target.password not in capsys.readouterr().err


def test_retention_is_a_dry_run_unless_applied(tmp_path, capsys):
    store = LocalObjectStore(tmp_path)
    for day in ("20240101", "20250101", "20250201", "20250301"):
        store.put_bytes(f"backups/kv/{day}/export.jsonl", b"{}")
        entry = ObjectEntry(key="export.jsonl", size=2, sha256="ab" * 32, stored_in=day)
        write_object_manifest(
            store,
            ObjectManifest(
                kind="kv", set_id=day, created_at="2025-01-01T00:00:00", source="redis",
                entries=(entry,),
            ),
        )  # fmt: skip
    args = ["retention", "--in", str(tmp_path), "--today", "2025-06-30"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "delete kv/20240101: 546 days old, over 30 (2 objects)" in out
    assert "dry run: nothing deleted" in out
    assert len(store.list("backups/kv/")) == 8
    assert main([*args, "--apply"]) == 0
    assert len(store.list("backups/kv/")) == 6
    assert main([*args, "--days", "kv=zero"]) == 2


def test_repo_backup_and_verify(tmp_path, capsys):
    origin = tmp_path / "origin"
    run(["git", "init", "-q", str(origin)], timeout=30)
    commit = ["git", "-C", str(origin), "-c", "user.name=a", "-c", "user.email=a@b"]
    run([*commit, "commit", "-q", "--allow-empty", "-m", "one"], timeout=30)
    run(["git", "-C", str(origin), "tag", "v1"], timeout=30)
    run(["git", "-C", str(origin), "branch", "release"], timeout=30)
    backups = tmp_path / "backups"
    assert main(["repo", "backup", "--url", str(origin), "--to", str(backups)]) == 0
    assert main(["repo", "verify", "--from", str(backups), "--source", str(origin)]) == 0
    out = capsys.readouterr().out
    assert "ok   git fsck --full: no problems" in out
    assert "ok   refs equal the source: 3 refs equal" in out
    run(["git", "-C", str(origin), "branch", "-D", "release"], timeout=30)
    assert main(["repo", "verify", "--from", str(backups), "--source", str(origin)]) == 1
    assert "FAIL refs equal the source: extra: refs/heads/release" in capsys.readouterr().out


def test_a_tampered_repository_archive_is_refused(tmp_path):
    origin = tmp_path / "origin"
    run(["git", "init", "-q", str(origin)], timeout=30)
    run(["git", "-C", str(origin), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q",
         "--allow-empty", "-m", "one"], timeout=30)  # fmt: skip
    store = LocalObjectStore(tmp_path / "backups")
    (tmp_path / "w").mkdir()
    result = backup_repo(str(origin), store, workdir=tmp_path / "w", set_id="20250101")
    archive = tmp_path / "backups/backups/code/20250101/repo.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-10])
    with pytest.raises(ManifestError, match="changed after the backup"):
        verify_repo(store, result.manifest.set_id, tmp_path / "w")
