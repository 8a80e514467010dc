"""The object-backup manifest: written last, read as untrusted input."""

import json
from datetime import UTC, datetime

import pytest

from harness.errors import ConfigError, ManifestError, SignatureError
from harness.objects.manifest import (
    ObjectEntry,
    ObjectManifest,
    list_set_ids,
    load_object_manifest,
    manifest_key,
    new_set_id,
    read_object_manifest,
    set_date,
    set_prefix,
    write_object_manifest,
)
from harness.storage.local import LocalObjectStore

SHA = "ab" * 32
KEY = b"k" * 32


def _manifest(**kw):
    entry = ObjectEntry(
        key="users/ü 1/photo.jpg",
        size=3,
        sha256=SHA,
        stored_in="20250101",
        etag="abc",
        content_type="image/jpeg",
        metadata={"owner": "u1"},
    )
    fields = {
        "kind": "images",
        "set_id": "20250102",
        "created_at": "2025-01-02T03:00:00+00:00",
        "source": "s3://images at http://127.0.0.1:9000",
        "entries": (entry,),
    }
    return ObjectManifest(**(fields | kw))


def test_round_trip_signed_and_unsigned():
    m = _manifest()
    assert load_object_manifest(m.to_json().encode(), signing_key=None).manifest == m
    loaded = load_object_manifest(m.to_json(signing_key=KEY).encode(), signing_key=KEY)
    assert (loaded.manifest, loaded.signature) == (m, "verified")


def test_an_edited_entry_is_detected_by_the_digest():
    doc = json.loads(_manifest().to_json())
    doc["entries"][0]["sha256"] = "cd" * 32
    with pytest.raises(ManifestError, match="modified after it was written"):
        load_object_manifest(json.dumps(doc).encode(), signing_key=None)


def test_a_signature_made_with_another_key_is_refused():
    data = _manifest().to_json(signing_key=b"x" * 32).encode()
    with pytest.raises(SignatureError, match="does not match"):
        load_object_manifest(data, signing_key=KEY)
    with pytest.raises(SignatureError, match="not signed"):
        load_object_manifest(_manifest().to_json().encode(), signing_key=KEY)


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a\\b", "a/./b", "bad\x00"])
def test_keys_that_would_leave_the_set_are_refused(key):
    doc = json.loads(_manifest().to_json())
    doc["entries"][0]["key"] = key
    doc.pop("digest")
    with pytest.raises(ManifestError, match=r"entries\[0\]\.key"):
        load_object_manifest(json.dumps(doc).encode(), signing_key=None)


def test_an_entry_stored_in_a_later_set_is_refused():
    late = ObjectEntry(key="a", size=1, sha256=SHA, stored_in="20250103")
    data = _manifest(entries=(late,)).to_json().encode()
    with pytest.raises(ManifestError, match="later than the set itself"):
        load_object_manifest(data, signing_key=None)


def test_duplicate_fields_and_unknown_fields_are_refused():
    text = _manifest().to_json()
    with pytest.raises(ManifestError, match="twice"):
        load_object_manifest(
            text.replace('"kind"', '"kind": "x", "kind"', 1).encode(), signing_key=None
        )
    doc = json.loads(text)
    doc["surprise"] = 1
    with pytest.raises(ManifestError, match="surprise"):
        load_object_manifest(json.dumps(doc).encode(), signing_key=None)


def test_layout_and_set_ids(tmp_path):
    store = LocalObjectStore(tmp_path)
    assert set_prefix("images", "20250102") == "backups/images/20250102/"
    assert manifest_key("kv", "20250102-030000") == "backups/kv/20250102-030000.manifest.json"
    write_object_manifest(store, _manifest())
    store.put_bytes("backups/images/20250105/orphan.jpg", b"x")  # no manifest: not a set
    assert list_set_ids(store, "images") == ["20250102"]
    assert read_object_manifest(store, "images", "20250102").manifest == _manifest()
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert new_set_id(now, set()) == "20250102"
    assert new_set_id(now, {"20250102"}) == "20250102-030405"
    assert str(set_date("20250102-030405")) == "2025-01-02"
    with pytest.raises(ConfigError, match="not a real date"):
        set_date("20251340")


def test_a_manifest_moved_to_another_set_is_refused(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put_bytes(manifest_key("images", "20250109"), _manifest().to_json().encode())
    with pytest.raises(ManifestError, match="moved or replaced"):
        read_object_manifest(store, "images", "20250109")
