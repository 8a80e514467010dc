"""The key-value export: JSON Lines, binary values lossless, damage detected."""

import io
import json

import pytest

from harness.errors import KvExportError
from harness.kv.base import (
    KvEntry,
    StreamRecord,
    check_export,
    entry_digest,
    read_export,
    write_export,
)

ENTRIES = [
    KvEntry.string(b"\xff\x00key", b"\x00\xff\"'\\\n", expires_at_ms=1_900_000_000_000),
    KvEntry.string(b"text", '日本語 "quoted"'.encode()),
    KvEntry.hash(b"session:1", [(b"user_id", b"u1"), (b"\xfe", b"\xfd")]),
    KvEntry.list_(b"l", [b"b", b"a", b"a"]),
    KvEntry.set_(b"s", [b"y", b"x"]),
    KvEntry.zset(b"z", [(b"inf", float("inf")), (b"tiny", 5e-324), (b"sum", 0.1 + 0.2)]),
    KvEntry.stream(b"st", [StreamRecord("1-1", ((b"f", b"v"), (b"f", b"w")))]),
    KvEntry.string(b"cf", b"v", metadata={"owner": ["u1", 2]}),
]


def _export(entries=ENTRIES):
    out = io.BytesIO()
    summary = write_export(entries, out, source="redis://h:1/0", created_at="2025-01-01T00:00:00")
    return out.getvalue(), summary


def test_every_type_and_byte_round_trips():
    data, summary = _export()
    assert list(read_export(io.BytesIO(data))) == ENTRIES
    assert check_export(io.BytesIO(data)) == summary
    assert summary.entries == len(ENTRIES)
    for line in data.splitlines():
        json.loads(line)  # every line is JSON on its own


def test_unordered_types_compare_equal_whatever_the_order():
    assert KvEntry.set_(b"s", [b"a", b"b"]) == KvEntry.set_(b"s", [b"b", b"a"])
    a = KvEntry.hash(b"h", [(b"a", b"1"), (b"b", b"2")])
    assert entry_digest(a) == entry_digest(KvEntry.hash(b"h", [(b"b", b"2"), (b"a", b"1")]))


def test_a_key_lost_from_the_export_is_detected():
    data, _ = _export()
    lines = data.splitlines(keepends=True)
    del lines[3]
    with pytest.raises(KvExportError, match="counts 8 entries but 7 were read"):
        check_export(io.BytesIO(b"".join(lines)))


def test_an_edited_value_is_detected():
    data, _ = _export()
    with pytest.raises(KvExportError, match="SHA-256"):
        check_export(io.BytesIO(data.replace(b'"u1"', b'"u2"', 1)))


def test_a_truncated_export_is_detected():
    data, _ = _export()
    cut = b"".join(data.splitlines(keepends=True)[:-1])
    with pytest.raises(KvExportError, match="truncated"):
        check_export(io.BytesIO(cut))


def test_not_an_export():
    with pytest.raises(KvExportError, match="not a key-value export"):
        check_export(io.BytesIO(b'{"hello": 1}\n'))


def test_a_value_of_the_wrong_shape_is_a_programming_error():
    with pytest.raises(TypeError, match="string entry"):
        KvEntry(b"k", "string", (b"a",))
