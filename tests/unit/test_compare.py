"""Comparison of fingerprints: which differences fail, which are only reported."""

import json

import pytest

from harness.errors import ManifestError
from harness.verify.catalog import CatalogFingerprint
from harness.verify.compare import FORMAT, Fingerprint, compare
from harness.verify.data import DataFingerprint, LargeObjectDigest, TableDigest

ROLES = ("anon", "authenticated", "service_role", "auditor in chief")


def _fingerprint(*, roles=ROLES, memberships=(), tables=(), large_objects=None, sections=None):
    body = {
        "roles": tuple((r, "NOLOGIN") for r in sorted(roles)),
        "memberships": tuple((m, "admin=False") for m in sorted(memberships)),
        **(sections or {}),
    }
    return Fingerprint(
        server_version="17.10",
        data=DataFingerprint(tables=tuple(tables), large_objects=large_objects),
        catalog=CatalogFingerprint(sections=body),
    )


def _table(name="t", *, rows=3, digest="42", populated=True):
    return TableDigest("public", name, rows, digest, ("id",), populated=populated)


def _critical_failures(expected, actual):
    return {c.name for c in compare(expected, actual).failed()}


@pytest.mark.parametrize(
    "membership",
    [
        "anon in service_role",  # a role of the set gains another's privileges
        "authenticated in pg_read_all_data",  # ... or a predefined role's
        "auditor in chief in service_role",  # names with " in " are split where they exist
        "platform_admin in service_role",  # a foreign role gains a role of the set
    ],
)
def test_an_extra_membership_involving_a_role_of_the_set_fails(membership):
    reference = _fingerprint()
    restored = _fingerprint(roles=(*ROLES, "platform_admin"), memberships=[membership])
    assert "catalog memberships" in _critical_failures(reference, restored)
    assert not compare(reference, restored).equal


def test_roles_and_memberships_outside_the_set_are_informational():
    reference = _fingerprint()
    restored = _fingerprint(
        roles=(*ROLES, "platform_admin", "platform in house"),
        memberships=["platform in house in platform_admin", "platform_admin in pg_monitor"],
    )
    result = compare(reference, restored)
    assert result.equal
    notes = {c.name: c for c in result.checks if not c.ok}
    assert set(notes) == {"catalog roles (extra)", "catalog memberships (extra)"}
    assert not any(c.critical for c in notes.values())
    assert "platform_admin" in notes["catalog roles (extra)"].detail


def test_a_missing_or_changed_membership_fails():
    reference = _fingerprint(memberships=["anon in authenticated"])
    assert "catalog memberships" in _critical_failures(reference, _fingerprint())
    changed = Fingerprint(
        server_version="17.10",
        data=DataFingerprint(tables=()),
        catalog=CatalogFingerprint(
            sections={
                "roles": reference.catalog.sections["roles"],
                "memberships": (("anon in authenticated", "admin=True"),),
            }
        ),
    )
    assert "catalog memberships" in _critical_failures(reference, changed)


@pytest.mark.parametrize(
    "section", ["relations", "policies", "default_privileges", "large_objects", "user_mappings"]
)
def test_an_extra_object_in_any_other_section_fails(section):
    reference = _fingerprint(sections={section: (("a", "x"),)})
    restored = _fingerprint(sections={section: (("a", "x"), ("b", "y"))})
    assert f"catalog {section}" in _critical_failures(reference, restored)


def test_population_state_of_a_materialized_view_is_compared():
    populated = _fingerprint(tables=[_table()])
    unpopulated = _fingerprint(tables=[_table(rows=0, digest="0", populated=False)])
    assert compare(unpopulated, unpopulated).equal
    detail = {c.name: c.detail for c in compare(populated, unpopulated).failed()}
    assert "not populated" in detail["data public.t"]
    detail = {c.name: c.detail for c in compare(unpopulated, populated).failed()}
    assert "populated now" in detail["data public.t"]
    ok = {c.name: c.detail for c in compare(unpopulated, unpopulated).checks}
    assert ok["data public.t"] == "not populated, as in the reference"


def test_large_objects_are_compared_by_count_and_content():
    same = LargeObjectDigest(count=2, digest="9")
    assert compare(_fingerprint(large_objects=same), _fingerprint(large_objects=same)).equal
    for other in (LargeObjectDigest(1, "9"), LargeObjectDigest(2, "8"), None):
        result = compare(_fingerprint(large_objects=same), _fingerprint(large_objects=other))
        assert "data large objects" in {c.name for c in result.failed()}
    none = LargeObjectDigest(count=0, digest="0")
    assert compare(_fingerprint(large_objects=none), _fingerprint(large_objects=none)).equal


def test_json_round_trip_keeps_states_and_large_objects():
    fingerprint = _fingerprint(
        tables=[_table(populated=False)], large_objects=LargeObjectDigest(3, "12")
    )
    again = Fingerprint.from_json(fingerprint.to_json())
    assert again == fingerprint
    assert json.loads(fingerprint.to_json())["format"] == FORMAT


def test_a_fingerprint_of_the_previous_format_compares_data_but_not_the_catalog():
    current = _fingerprint(tables=[_table()], sections={"relations": (("public.t", "acl=x"),)})
    body = json.loads(current.to_json())
    body["format"] = 1
    del body["data"]["large_objects"]
    for table in body["data"]["tables"]:
        del table["populated"]
    body["catalog"]["sections"]["relations"] = [["public.t", "acl=y"]]
    old = Fingerprint.from_json(json.dumps(body))
    result = compare(old, current)
    assert result.equal, result.diff
    note = next(c for c in result.checks if c.name == "catalog")
    assert not note.ok
    assert not note.critical
    assert "format 1" in note.detail
    changed = _fingerprint(tables=[_table(digest="43")])
    assert "data public.t" in _critical_failures(old, changed)


def test_an_unknown_format_is_refused_with_a_clear_message():
    body = json.loads(_fingerprint().to_json())
    body["format"] = 99
    with pytest.raises(ManifestError, match="format 99"):
        Fingerprint.from_json(json.dumps(body))
