"""Row hash versions: how each chains the columns, and how versions meet in a comparison."""

import json

import pytest

from harness.errors import ManifestError
from harness.verify.catalog import CatalogFingerprint
from harness.verify.compare import Fingerprint, compare
from harness.verify.data import (
    ROW_HASH,
    SEEDED_UP_TO,
    DataFingerprint,
    TableDigest,
    hash_expression,
)


def _sql(columns, version=ROW_HASH):
    return hash_expression(columns, version=version).as_string(None)


def test_version_2_seeds_each_column_with_the_chain_so_far():
    text = _sql([("a", "int4"), ("b", "text"), ("c", "bpchar")])
    seeded = text.split(", hashint8extended(")[0]
    assert seeded == (
        'coalesce(hashbpcharextended("t"."c", hashtextextended("t"."b", '
        'hashint4extended("t"."a", 0)))'
    )
    # One hash call per column on the seeded chain, against two in version 1.
    assert seeded.count("extended(") == 3
    assert _sql([("a", "int4"), ("b", "text"), ("c", "bpchar")], 1).count("extended(") == 5


def test_version_2_falls_back_to_the_null_safe_chain_for_rows_with_a_null():
    text = _sql([("a", "int4"), ("b", "text")])
    fallback = text.split(")), ", 1)[1]
    assert fallback.startswith("hashint8extended(coalesce(hashtextextended")
    assert "-7046029254386353131" in fallback


def test_version_1_is_unchanged():
    text = _sql([("a", "int4"), ("b", "timestamptz"), ("c", None)], 1)
    assert text == (
        'hashint8extended(coalesce(hashtextextended("t"."c"::text, 0), -7046029254386353131), '
        'hashint8extended(coalesce(timestamp_hash_extended("t"."b" AT TIME ZONE \'UTC\', 0), '
        '-7046029254386353131), coalesce(hashint4extended("t"."a", 0), -7046029254386353131)))'
    )


def test_types_without_a_value_hash_go_through_their_text_form():
    assert _sql([("iv", "interval")]).startswith('coalesce(hashtextextended("t"."iv"::text, 0)')
    assert _sql([("x", None)]).startswith('coalesce(hashtextextended("t"."x"::text, 0)')


def test_an_unknown_version_is_refused():
    with pytest.raises(ValueError, match="row hash version 7"):
        hash_expression([("a", "int4")], version=7)


def test_a_very_wide_table_renders_without_deep_recursion():
    columns = [(f"c{i}", "int4") for i in range(1600)]
    assert _sql(columns).count("hashint4extended(") == 1600
    assert _sql(columns[:SEEDED_UP_TO]).count("hashint4extended(") == 2 * SEEDED_UP_TO


def _fingerprint(row_hash, digest="42"):
    return Fingerprint(
        server_version="17.10",
        data=DataFingerprint(
            tables=(TableDigest("public", "t", 3, digest, ("id",)),), row_hash=row_hash
        ),
        catalog=CatalogFingerprint(sections={}),
    )


def test_digests_of_different_versions_are_not_compared_and_the_check_says_why():
    result = compare(_fingerprint(1), _fingerprint(2))
    check = next(c for c in result.checks if c.name == "data public.t")
    assert not check.ok
    assert check.critical
    assert "row hash version 1" in check.detail
    assert "like=reference" in check.detail


def test_a_document_without_a_version_is_version_1_and_keeps_it_through_json():
    body = json.loads(_fingerprint(2).to_json())
    del body["data"]["row_hash"]
    old = Fingerprint.from_json(json.dumps(body))
    assert old.data.row_hash == 1
    assert Fingerprint.from_json(old.to_json()).data.row_hash == 1
    assert compare(old, _fingerprint(1)).equal


def test_an_unknown_row_hash_version_is_refused_with_a_clear_message():
    body = json.loads(_fingerprint(2).to_json())
    body["data"]["row_hash"] = 9
    with pytest.raises(ManifestError, match="row hash version 9"):
        Fingerprint.from_json(json.dumps(body))


def test_a_table_wider_than_the_seeded_limit_takes_only_the_null_safe_chain():
    wide = [(f"c{i}", "int4") for i in range(SEEDED_UP_TO + 1)]
    text = _sql(wide)
    assert text.startswith("hashint8extended(coalesce(hashint4extended")
    assert text.count("hashint4extended(") == SEEDED_UP_TO + 1
    assert _sql(wide[:SEEDED_UP_TO]).startswith("coalesce(hashint4extended")
