"""The manifest is read as untrusted input: every hostile shape is one clear ManifestError."""

import hashlib
import json

import pytest

from harness.errors import ConfigError, ManifestError, SignatureError
from harness.redact import redact
from harness.sets import signing
from harness.sets.manifest import (
    Artifact,
    Manifest,
    SequenceState,
    TableRows,
    load_manifest,
)
from harness.storage.base import contained_path, key_problem

KEY = b"k3y-for-tests-0123456789"
OTHER_KEY = b"another-key-0123456789"


def _manifest():
    return Manifest(
        created_at="2026-11-22T03:00:00+00:00",
        dbname="app",
        source_server_version="15.8",
        source_major=15,
        system_identifier="7312345678901234567",
        wal_lsn="0/3000060",
        dump_format="custom",
        tools={"pg_dump": "pg_dump (PostgreSQL) 15.8", "harness": "0.1"},
        artifacts=(
            Artifact("db/app.dump", 2048, "a" * 64, "dump-custom"),
            Artifact("globals/roles.json", 10, "b" * 64, "globals"),
        ),
        tables=(TableRows("public", "reservations", 300),),
        sequences=(SequenceState("public", "reservations_id_seq", 300, True),),
    )


def _canonical(body):
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _forged(change):
    """A manifest edited by someone who recomputes the digest."""
    body = json.loads(_manifest().to_json())
    del body["digest"]
    change(body)
    body["digest"] = hashlib.sha256(_canonical(body)).hexdigest()
    return json.dumps(body).encode()


def _set_artifact(**fields):
    return lambda body: body["artifacts"][0].update(fields)


HOSTILE_BODIES = [
    ("parent-segment", _set_artifact(path="../elsewhere.dump"), "has a '..' segment"),
    ("parent-inside", _set_artifact(path="db/../../x"), "has a '..' segment"),
    ("absolute", _set_artifact(path="/etc/passwd"), "is absolute"),
    ("backslash", _set_artifact(path="db\\..\\x"), "contains a backslash"),
    ("nul", _set_artifact(path="db/app\x00.dump"), "contains a control character"),
    ("newline", _set_artifact(path="db/app\n.dump"), "contains a control character"),
    ("empty-segment", _set_artifact(path="db//app.dump"), "has an empty segment"),
    ("trailing-slash", _set_artifact(path="db/"), "has an empty segment"),
    ("dot-segment", _set_artifact(path="./db/app.dump"), "has a '.' segment"),
    ("empty-path", _set_artifact(path=""), "artifacts[0].path: string should have at least"),
    ("long-path", _set_artifact(path="a/" * 600), "artifacts[0].path: string should have at most"),
    ("itself", _set_artifact(path="manifest.json"), "cannot list itself"),
    ("size-as-string", _set_artifact(size="2048"), "artifacts[0].size: should be a valid integer"),
    ("size-as-float", _set_artifact(size=2048.0), "artifacts[0].size: should be a valid integer"),
    ("size-as-bool", _set_artifact(size=True), "artifacts[0].size: should be a valid integer"),
    ("negative-size", _set_artifact(size=-1), "greater than or equal to 0"),
    ("huge-size", _set_artifact(size=10**30), "less than or equal to 9223372036854775807"),
    ("sha-uppercase", _set_artifact(sha256="A" * 64), "artifacts[0].sha256: string should match"),
    ("sha-short", _set_artifact(sha256="a" * 63), "artifacts[0].sha256: string should match"),
    ("unknown-kind", _set_artifact(kind="payload"), "'payload' is not one of"),
    ("unknown-field", lambda b: b.update(run="rm -rf /"), "run is not a field of this manifest"),
    ("missing-field", lambda b: b.pop("tables"), "tables is missing"),
    ("tables-not-array", lambda b: b.update(tables={}), "tables: should be a valid array"),
    ("rows-negative", lambda b: b["tables"][0].update(rows=-5), "tables[0].rows"),
    ("tool-not-text", lambda b: b["tools"].update(pg_dump=15), "tools.pg_dump: should be a valid"),
    ("control-in-dbname", lambda b: b.update(dbname="app\n ok"), "dbname: contains a control"),
    ("bad-time", lambda b: b.update(created_at="yesterday"), "created_at: is not an ISO 8601"),
    ("bad-lsn", lambda b: b.update(wal_lsn="0/3000060; DROP"), "wal_lsn: string should match"),
    ("version-zero", lambda b: b.update(format_version=0), "format_version: should be greater"),
    ("version-bool", lambda b: b.update(format_version=True), "format_version: should be a valid"),
    ("newer-version", lambda b: b.update(format_version=2), "made by a newer harness"),
    (
        "duplicate-path",
        lambda b: b["artifacts"].append(dict(b["artifacts"][0], kind="fingerprint")),
        "lists the artifact 'db/app.dump' twice",
    ),
    (
        "file-and-directory",
        lambda b: b["artifacts"].append(dict(b["artifacts"][0], path="db/app.dump/toc.dat")),
        "both as a file and as the directory",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [c[1:] for c in HOSTILE_BODIES], ids=[c[0] for c in HOSTILE_BODIES]
)
def test_hostile_manifest_is_one_clear_manifest_error(change, message):
    with pytest.raises(ManifestError) as info:
        load_manifest(_forged(change), signing_key=None)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert len(text) < 400


HOSTILE_BYTES = [
    ("not-utf8", b'{"dbname": "\xff\xfe"}', "not UTF-8 text (byte 0xff at offset 12)"),
    ("utf16", '{"a": 1}'.encode("utf-16"), "not UTF-8 text"),
    ("not-json", b"<html>402 Payment Required</html>", "not valid JSON"),
    ("empty", b"", "it is empty: a truncated upload?"),
    ("truncated", _manifest().to_json().encode()[:300], "not valid JSON"),
    ("array", b"[1, 2]", "not a JSON object"),
    ("nan", b'{"format_version": 1, "extra": {"x": NaN}}', "holds NaN"),
    ("infinity", b'{"size": -Infinity}', "holds -Infinity"),
    ("duplicate-key", b'{"dbname": "a", "dbname": "b"}', "names the field 'dbname' twice"),
    ("deep", b"[" * 200_000 + b"]" * 200_000, "nests too deeply"),
    ("giant-integer", b'{"size": ' + b"9" * 10_000 + b"}", "number too long"),
    ("too-big", b" " * (32 << 20) + b"{}", "more than the 33554432 a manifest may have"),
    ("no-digest", json.dumps({"format_version": 1}).encode(), "is missing"),
]


@pytest.mark.parametrize(
    ("data", "message"), [c[1:] for c in HOSTILE_BYTES], ids=[c[0] for c in HOSTILE_BYTES]
)
def test_unreadable_manifest_bytes_are_one_clear_manifest_error(data, message):
    with pytest.raises(ManifestError) as info:
        load_manifest(data, signing_key=None)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_written_manifest_reads_back_equal_and_keeps_the_digest_format():
    manifest = _manifest()
    text = manifest.to_json()
    assert Manifest.from_json(text) == manifest
    body = json.loads(text)
    digest = body.pop("digest")
    # Sets written before signing existed carry exactly this digest: they still read.
    assert digest == hashlib.sha256(_canonical(body)).hexdigest()
    assert load_manifest(text.encode(), signing_key=None).signature == "unsigned"


def test_a_manifest_without_a_digest_is_refused():
    body = json.loads(_manifest().to_json())
    del body["digest"]
    with pytest.raises(ManifestError, match="has no digest"):
        load_manifest(json.dumps(body).encode(), signing_key=None)


def test_an_edit_without_a_new_digest_is_detected():
    text = _manifest().to_json().replace('"rows": 300', '"rows": 299')
    with pytest.raises(ManifestError, match="modified after it was written"):
        Manifest.from_json(text)


def test_a_forger_who_recomputes_the_digest_passes_without_a_key_but_not_with_one():
    signed = json.loads(_manifest().to_json(signing_key=KEY))
    signed["tables"][0]["rows"] = 299
    del signed["digest"]
    signature = signed.pop("signature")
    signed["digest"] = hashlib.sha256(_canonical(signed)).hexdigest()
    signed["signature"] = signature
    data = json.dumps(signed).encode()
    assert load_manifest(data, signing_key=None).signature == "unverified"
    with pytest.raises(SignatureError) as info:
        load_manifest(data, signing_key=KEY)
    assert str(info.value) == (
        "manifest.json signature does not match: the set was altered or signed with another key"
    )


def test_signatures_verify_only_under_the_same_key():
    data = _manifest().to_json(signing_key=KEY).encode()
    assert load_manifest(data, signing_key=KEY).signature == "verified"
    assert load_manifest(data, signing_key=None).signature == "unverified"
    with pytest.raises(SignatureError, match="signed with another key"):
        load_manifest(data, signing_key=OTHER_KEY)
    with pytest.raises(SignatureError, match="is not signed but DRILL_SIGNING_KEY is set"):
        load_manifest(_manifest().to_json().encode(), signing_key=KEY)


@pytest.mark.parametrize("signature", ["hmac-sha256:" + "0" * 64, "sha1:abc", 12])
def test_forged_or_malformed_signatures_are_refused(signature):
    body = json.loads(_manifest().to_json())
    body["signature"] = signature
    with pytest.raises(ManifestError):
        load_manifest(json.dumps(body).encode(), signing_key=KEY)


def test_the_signing_key_is_read_when_needed_and_kept_secret(monkeypatch):
    monkeypatch.delenv(signing.ENV_VAR, raising=False)
    assert signing.configured_key() is None
    monkeypatch.setenv(signing.ENV_VAR, "sixteen-chars-or-more-secret")
    assert signing.configured_key() == b"sixteen-chars-or-more-secret"
    assert "sixteen-chars-or-more-secret" not in redact("key=sixteen-chars-or-more-secret")
    monkeypatch.setenv(signing.ENV_VAR, "short-secret")
    with pytest.raises(ConfigError) as info:
        signing.configured_key()
    assert "shorter than 16 characters" in str(info.value)
    assert "short-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("db/app.dump", None),
        ("sets/été 2026/ファイル name.bin", None),
        ("..", "has a '..' segment"),
        ("a/../b", "has a '..' segment"),
        ("/abs", "is absolute"),
        ("a\\b", "contains a backslash"),
        ("a\x7fb", "contains a control character"),
        ("a\u0085b", "contains a control character"),
        ("a//b", "has an empty segment"),
        ("a\ud800", "is not valid Unicode text"),
        ("x" * 256, "has a segment longer than 255 bytes"),
        ("", "is empty"),
    ],
)
def test_key_rules(key, problem):
    found = key_problem(key)
    assert found == problem if problem is None else problem in found


def test_contained_path_stays_inside(tmp_path):
    assert contained_path(tmp_path, "db/app.dump") == tmp_path / "db" / "app.dump"
    (tmp_path / "link").symlink_to("/")
    from harness.errors import UnsafeObjectError

    with pytest.raises(UnsafeObjectError, match="outside"):
        contained_path(tmp_path, "link/etc/passwd")
    with pytest.raises(UnsafeObjectError, match=r"'\.\.' segment"):
        contained_path(tmp_path, "../x")


def test_the_digest_is_the_one_written_whether_signed_or_not():
    manifest = _manifest()
    plain = json.loads(manifest.to_json())
    signed = json.loads(manifest.to_json(signing_key=b"k" * 32))
    assert manifest.digest == plain["digest"] == signed["digest"]
    assert "signature" in signed
