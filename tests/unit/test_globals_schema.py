"""roles.json is validated before it becomes DDL: allow-lists, bounds, no unknown keys."""

import json
import typing

import pytest

from harness.errors import GlobalsError, ManifestError
from harness.pg.globals import (
    ATTRIBUTES,
    DatabaseGrant,
    Globals,
    Membership,
    Role,
    assignment,
    render_sql,
)
from harness.pg.globals_schema import Attribute

GOOD = Globals(
    roles=(
        Role(
            "anon",
            ("NOSUPERUSER", "INHERIT", "NOLOGIN", "NOBYPASSRLS"),
            settings=("statement_timeout=3s",),
        ),
        Role(
            "authenticator",
            ("LOGIN", "NOINHERIT"),
            connection_limit=60,
            valid_until="2040-01-01 00:00:00+00",
            settings=('search_path="$user", public, extensions', "pgrst.db_schemas=api"),
            db_settings=("statement_timeout=8s",),
        ),
    ),
    memberships=(Membership("anon", "authenticator", False, True, True),),
    database_owner="app_owner",
    database_settings=("app.environment=production",),
    database_grants=(DatabaseGrant("", "CONNECT"), DatabaseGrant("anon", "TEMPORARY", True)),
    database_comment="lesson booking; it's fine",
    notes=("password verifiers are not backed up",),
)


def _doc(**changes):
    data = json.loads(GOOD.to_json())
    for path, value in changes.items():
        node = data
        *parents, last = path.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return json.dumps(data)


def test_a_snapshot_round_trips():
    assert Globals.from_json(GOOD.to_json()) == GOOD


def test_the_allow_list_is_exactly_the_attributes_the_harness_reads():
    keywords = {kw for _, kw in ATTRIBUTES} | {"NO" + kw for _, kw in ATTRIBUTES}
    assert set(typing.get_args(Attribute)) == keywords


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"roles__0__attributes__0": "LOGIN; DROP DATABASE x"}, "roles.0.attributes.0"),
        ({"roles__0__attributes__0": "login"}, "roles.0.attributes.0"),
        ({"roles__0__attributes": ["LOGIN", "NOLOGIN"]}, "roles.0.attributes"),
        ({"roles__0__name": "x" * 64}, "roles.0.name"),
        ({"roles__0__name": "é" * 32}, "roles.0.name"),  # 64 bytes
        ({"roles__0__name": ""}, "roles.0.name"),
        ({"roles__0__settings": ["search_path; DROP TABLE t=1"]}, "roles.0.settings.0"),
        ({"roles__0__settings": ["statement_timeout"]}, "roles.0.settings.0"),
        ({"database_settings": ['"x" = 1; DROP=1']}, "database_settings.0"),
        ({"roles__1__valid_until": "2040'); DROP ROLE x; --"}, "roles.1.valid_until"),
        ({"roles__1__connection_limit": -5}, "roles.1.connection_limit"),
        ({"roles__1__connection_limit": "60"}, "roles.1.connection_limit"),
        ({"database_grants__0__privilege": "ALL; DROP DATABASE x"}, "database_grants.0.privilege"),
        ({"database_grants__0__privilege": "SELECT"}, "database_grants.0.privilege"),
        ({"memberships__0__admin_option": 1}, "memberships.0.admin_option"),
        ({"memberships__0__member": "a\u0000b"}, "memberships.0.member"),
        ({"roles__0__superpowers": ["ALL"]}, "roles.0.superpowers"),
        ({"database_owner": "o" * 100}, "database_owner"),
    ],
    ids=[
        "attribute-injection",
        "attribute-case",
        "contradicting-attributes",
        "name-64-chars",
        "name-64-bytes",
        "empty-name",
        "setting-name-injection",
        "setting-without-value",
        "database-setting-name",
        "valid-until-injection",
        "connection-limit-range",
        "connection-limit-type",
        "privilege-injection",
        "privilege-not-for-databases",
        "bool-as-int",
        "nul-in-name",
        "unknown-key",
        "owner-too-long",
    ],
)
def test_hostile_or_broken_values_are_refused_naming_the_field(change, named):
    with pytest.raises(GlobalsError) as info:
        Globals.from_json(_doc(**change))
    message = str(info.value)
    assert named in message
    assert "globals/roles.json is not a valid roles snapshot" in message
    assert isinstance(info.value, ManifestError)
    assert "\n" not in message


@pytest.mark.parametrize("text", ["", "[]", "{", '{"roles": []}', '"roles"'])
def test_not_a_snapshot_at_all(text):
    with pytest.raises(GlobalsError, match="not a valid roles snapshot"):
        Globals.from_json(text)


def test_a_long_hostile_value_is_shortened_in_the_message():
    with pytest.raises(GlobalsError) as info:
        Globals.from_json(_doc(roles__0__attributes__0="LOGIN " + "A" * 5000))
    assert len(str(info.value)) < 600


def test_assignment_refuses_a_setting_that_bypassed_the_schema():
    with pytest.raises(GlobalsError):
        assignment("search_path; DROP TABLE t=1")
    rendered = assignment('search_path="$user", public').as_string(None)
    assert rendered == "\"search_path\" = '$user', 'public'"


def test_roles_sql_quotes_names_and_values():
    odd = Globals(
        roles=(Role('we"ird', ("LOGIN",), settings=("application_name=it's",)),),
        memberships=(Membership('we"ird', "anon"),),
    )
    text = render_sql(odd)
    assert 'CREATE ROLE "we""ird";' in text
    assert 'ALTER ROLE "we""ird" SET "application_name" = \'it\'\'s\';' in text
    assert 'GRANT "we""ird" TO "anon";' in text
