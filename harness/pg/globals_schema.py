"""The schema of ``globals/roles.json``: what a restore accepts before it writes any SQL.

A restore turns the roles snapshot into DDL (``CREATE ROLE ... LOGIN BYPASSRLS``, ``ALTER
ROLE ... SET``, ``GRANT CONNECT ON DATABASE``). Keywords cannot be query parameters, so the
snapshot is validated first, strictly: every attribute is one of PostgreSQL's role attribute
keywords, every setting a ``name=value`` pair with a valid parameter name, every database
privilege one that exists, every name a possible role name; unknown keys and wrong types are
refused. A file that fails is reported as a :class:`~harness.errors.GlobalsError` naming the
offending field, and nothing is restored.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from harness.errors import GlobalsError

DATABASE_PRIVILEGES = ("CREATE", "CONNECT", "TEMPORARY")
# Identifiers are at most NAMEDATALEN - 1 = 63 bytes; longer ones are silently truncated by
# the server, so two different names in a file could land on one role.
MAX_NAME_BYTES = 63
# A configuration parameter: a name, or a dotted custom one (pgrst.db_schemas, app.settings.x).
GUC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*")
# rolvaliduntil as text, in any DateStyle: digits, letters of month and zone names, separators.
_TIMESTAMP = re.compile(r"-?infinity|(?=.*\d)[0-9A-Za-z :.+\-/,]{1,64}")
MAX_VALUE_CHARS = 8192

# PostgreSQL's role attributes (ALTER ROLE ... WITH), each with its NO- form.
Attribute = Literal[
    "SUPERUSER",
    "NOSUPERUSER",
    "INHERIT",
    "NOINHERIT",
    "CREATEROLE",
    "NOCREATEROLE",
    "CREATEDB",
    "NOCREATEDB",
    "LOGIN",
    "NOLOGIN",
    "REPLICATION",
    "NOREPLICATION",
    "BYPASSRLS",
    "NOBYPASSRLS",
]


def _role_name(value: str) -> str:
    if not value or len(value.encode()) > MAX_NAME_BYTES or "\x00" in value:
        raise ValueError(f"a role name is 1 to {MAX_NAME_BYTES} bytes without NUL")
    return value


def _role_or_public(value: str) -> str:
    return value if value == "" else _role_name(value)


def _setting(value: str) -> str:
    name, sep, rest = value.partition("=")
    if not sep or not GUC_NAME.fullmatch(name):
        raise ValueError("a setting is name=value with a configuration parameter name")
    if "\x00" in rest or len(rest) > MAX_VALUE_CHARS:
        raise ValueError(f"a setting's value has at most {MAX_VALUE_CHARS} characters, no NUL")
    return value


def _timestamp(value: str | None) -> str | None:
    if value is not None and not _TIMESTAMP.fullmatch(value):
        raise ValueError("VALID UNTIL must be a timestamp or infinity")
    return value


def _one_per_family(values: tuple[str, ...]) -> tuple[str, ...]:
    # No positive keyword starts with "NO": stripping it gives the family.
    families = [v.removeprefix("NO") for v in values]
    if len(set(families)) != len(families):
        raise ValueError("each role attribute may appear once (not both X and NOX)")
    return values


RoleName = Annotated[str, AfterValidator(_role_name)]
Grantee = Annotated[str, AfterValidator(_role_or_public)]
Setting = Annotated[str, AfterValidator(_setting)]
Settings = Annotated[tuple[Setting, ...], Field(max_length=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class RoleModel(_Strict):
    """One role as ``roles.json`` holds it."""

    name: RoleName
    attributes: Annotated[tuple[Attribute, ...], AfterValidator(_one_per_family)]
    connection_limit: Annotated[int, Field(ge=-1)] = -1
    valid_until: Annotated[str | None, AfterValidator(_timestamp)] = None
    settings: Settings = ()
    db_settings: Settings = ()


class MembershipModel(_Strict):
    """``member`` belongs to ``role``."""

    role: RoleName
    member: RoleName
    admin_option: bool = False
    inherit_option: bool | None = None
    set_option: bool | None = None


class DatabaseGrantModel(_Strict):
    """One privilege on the database; grantee "" is PUBLIC."""

    grantee: Grantee
    privilege: Literal["CREATE", "CONNECT", "TEMPORARY"]
    grantable: bool = False


class GlobalsModel(_Strict):
    """The whole snapshot."""

    roles: Annotated[tuple[RoleModel, ...], Field(max_length=100_000)]
    memberships: Annotated[tuple[MembershipModel, ...], Field(max_length=1_000_000)]
    database_owner: Grantee = ""
    database_settings: Settings = ()
    database_grants: tuple[DatabaseGrantModel, ...] | None = None
    database_comment: Annotated[str, Field(max_length=1_000_000)] | None = None
    notes: Annotated[tuple[Annotated[str, Field(max_length=1000)], ...], Field(max_length=100)] = ()


def parse_globals(text: str, *, source: str = "globals/roles.json") -> GlobalsModel:
    """Validate a roles snapshot.

    Args:
        text: the JSON document.
        source: how to name the document in messages.

    Raises:
        GlobalsError: the document is not JSON, misses or adds a field, or holds a value the
            schema does not allow; the message names the first offending fields.

    """
    try:
        return GlobalsModel.model_validate_json(text)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:3]:
            where = ".".join(str(part) for part in error["loc"]) or "document"
            shown = repr(error.get("input"))
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            got = f" (got {shown})" if error["type"] not in ("missing", "json_invalid") else ""
            problems.append(f"{where}: {error['msg']}{got}")
        more = f" and {exc.error_count() - 3} more" if exc.error_count() > 3 else ""
        raise GlobalsError(
            f"{source} is not a valid roles snapshot, so no role or database setting will be "
            f"applied from it: {'; '.join(problems)}{more}; the set was altered or damaged: "
            "restore from another set"
        ) from exc
