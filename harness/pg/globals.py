"""Cluster globals a database needs: roles with every attribute, memberships and settings.

Read from the catalogs (``pg_roles``, ``pg_auth_members``, ``pg_db_role_setting``), which
any role may read, so a non-superuser backup role can take them. Password verifiers are not
taken: they are secrets, and ``pg_authid`` needs superuser anyway; LOGIN roles created by a
restore need their passwords set again.

Restoring *converges* a server to the snapshot instead of replaying ``CREATE ROLE``
(:mod:`harness.pg.roles`). A snapshot read back from a backup set is validated against a
strict schema first (:mod:`harness.pg.globals_schema`): it becomes DDL.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Self

from psycopg import Connection, sql

from harness.config import PgTarget
from harness.errors import GlobalsError
from harness.pg.globals_schema import DATABASE_PRIVILEGES, GUC_NAME, parse_globals
from harness.pg.sql import connect

# Attributes in the order ALTER ROLE spells them: (catalog column, keyword when true).
ATTRIBUTES = (
    ("rolsuper", "SUPERUSER"),
    ("rolinherit", "INHERIT"),
    ("rolcreaterole", "CREATEROLE"),
    ("rolcreatedb", "CREATEDB"),
    ("rolcanlogin", "LOGIN"),
    ("rolreplication", "REPLICATION"),
    ("rolbypassrls", "BYPASSRLS"),
)
# GUCs whose value is a list: each element is its own literal (as pg_dumpall does).
LIST_GUCS = frozenset(
    {
        "search_path",
        "temp_tablespaces",
        "session_preload_libraries",
        "shared_preload_libraries",
        "local_preload_libraries",
    }
)


@dataclass(frozen=True)
class Role:
    """One role: attributes, connection limit, expiry and role-wide settings."""

    name: str
    attributes: tuple[str, ...]  # keywords that are true, e.g. ("LOGIN", "NOINHERIT"...)
    connection_limit: int = -1
    valid_until: str | None = None
    settings: tuple[str, ...] = ()  # "name=value" as pg_db_role_setting stores them
    db_settings: tuple[str, ...] = ()  # settings of this role in the backed-up database


@dataclass(frozen=True)
class Membership:
    """``member`` is a member of ``role``."""

    role: str
    member: str
    admin_option: bool = False
    inherit_option: bool | None = None  # PostgreSQL 16+
    set_option: bool | None = None  # PostgreSQL 16+


@dataclass(frozen=True)
class DatabaseGrant:
    """One privilege on the database itself; grantee "" means PUBLIC."""

    grantee: str
    privilege: str
    grantable: bool = False


@dataclass(frozen=True)
class Globals:
    """Everything outside the database's own dump that a restore needs."""

    roles: tuple[Role, ...]
    memberships: tuple[Membership, ...]
    database_owner: str = ""
    database_settings: tuple[str, ...] = ()
    database_grants: tuple[DatabaseGrant, ...] | None = None  # None: default privileges
    database_comment: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        """Serialise (stable key order, for hashing and diffs)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str = "globals/roles.json") -> Self:
        """Parse what :meth:`to_json` wrote, validated against the strict schema.

        Args:
            text: the JSON document.
            source: how to name the document in messages.

        Raises:
            GlobalsError: the document is not a valid snapshot (unknown keys, wrong types,
                an attribute, setting or privilege outside the allow-lists, an impossible
                role name).

        """
        model = parse_globals(text, source=source)
        grants = model.database_grants
        return cls(
            roles=tuple(
                Role(
                    name=r.name,
                    attributes=r.attributes,
                    connection_limit=r.connection_limit,
                    valid_until=r.valid_until,
                    settings=r.settings,
                    db_settings=r.db_settings,
                )
                for r in model.roles
            ),
            memberships=tuple(
                Membership(m.role, m.member, m.admin_option, m.inherit_option, m.set_option)
                for m in model.memberships
            ),
            database_owner=model.database_owner,
            database_settings=model.database_settings,
            database_grants=None
            if grants is None
            else tuple(DatabaseGrant(g.grantee, g.privilege, g.grantable) for g in grants),
            database_comment=model.database_comment,
            notes=model.notes,
        )

    def role(self, name: str) -> Role | None:
        """The role called ``name``, if the snapshot has it."""
        return next((r for r in self.roles if r.name == name), None)


def export_globals(target: PgTarget) -> Globals:
    """Read the roles and database-level settings ``target``'s database depends on."""
    with connect(target) as conn:
        return read_globals(conn)


def read_globals(conn: Connection[Any]) -> Globals:
    """Read globals on an open connection (inside the caller's snapshot, if any)."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c, _ in ATTRIBUTES)
    rows = conn.execute(
        sql.SQL(
            "SELECT rolname, {}, rolconnlimit, rolvaliduntil::text FROM pg_roles "
            "WHERE rolname !~ '^pg_' ORDER BY rolname"
        ).format(columns)
    ).fetchall()
    settings = _settings(conn)
    roles = []
    for row in rows:
        name = str(row[0])
        flags = row[1 : 1 + len(ATTRIBUTES)]
        attrs = tuple(
            kw if on else "NO" + kw for (_, kw), on in zip(ATTRIBUTES, flags, strict=True)
        )
        roles.append(
            Role(
                name=name,
                attributes=attrs,
                connection_limit=int(row[-2]),
                # 'infinity' and NULL both mean "never expires"; ALTER ROLE writes only 'infinity'.
                valid_until=None if row[-1] in (None, "infinity") else str(row[-1]),
                settings=tuple(settings.get((name, False), ())),
                db_settings=tuple(settings.get((name, True), ())),
            )
        )
    pg16 = conn.info.server_version >= 160000
    extra = ", am.inherit_option, am.set_option" if pg16 else ", NULL, NULL"
    members = conn.execute(
        "SELECT r.rolname, m.rolname, am.admin_option" + extra + " "
        "FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid "
        "JOIN pg_roles m ON m.oid = am.member WHERE m.rolname !~ '^pg_' "
        "ORDER BY 1, 2"
    ).fetchall()
    db = conn.execute(
        "SELECT pg_get_userbyid(datdba), datacl IS NULL, "
        "shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname = current_database()"
    ).fetchone()
    grants = None
    if db is not None and not db[1]:
        grants = tuple(
            DatabaseGrant(grantee=str(g or ""), privilege=str(p), grantable=bool(o))
            for g, p, o in conn.execute(
                "SELECT CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee) END, "
                "a.privilege_type, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a "
                "WHERE d.datname = current_database() ORDER BY 1, 2"
            ).fetchall()
        )
    return Globals(
        roles=tuple(roles),
        memberships=tuple(Membership(str(r), str(m), bool(a), i, s) for r, m, a, i, s in members),
        database_owner=str(db[0]) if db else "",
        database_settings=tuple(settings.get(("", True), ())),
        database_grants=grants,
        database_comment=db[2] if db else None,
        notes=("password verifiers are not backed up; set LOGIN roles' passwords after a restore",),
    )


def _settings(conn: Connection[Any]) -> dict[tuple[str, bool], list[str]]:
    """Map (role or "", in-this-database) to its settings."""
    found: dict[tuple[str, bool], list[str]] = {}
    for role, in_db, config in conn.execute(
        "SELECT coalesce(r.rolname, ''), s.setdatabase <> 0, s.setconfig "
        "FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole "
        "LEFT JOIN pg_database d ON d.oid = s.setdatabase "
        "WHERE s.setdatabase = 0 OR d.datname = current_database()"
    ).fetchall():
        found.setdefault((str(role), bool(in_db)), []).extend(sorted(config or ()))
    return found


def render_sql(snapshot: Globals) -> str:
    """A human-readable SQL rendering of the snapshot, for auditors (not used to restore).

    Names and values are quoted as the server would need them, so a role called ``a"b`` or
    a setting holding a quote reads back as what it is.
    """
    lines = [
        "-- Roles, memberships and settings taken with the backup.",
        "-- A restore converges to roles.json; this file is for reading.",
    ]

    def text(statement: sql.Composable) -> str:
        return statement.as_string(None) + ";"

    for role in snapshot.roles:
        name = sql.Identifier(role.name)
        lines.append(text(sql.SQL("CREATE ROLE {}").format(name)))
        lines.append(
            text(
                sql.SQL("ALTER ROLE {} WITH {} CONNECTION LIMIT {}").format(
                    name,
                    sql.SQL(" ").join(attribute_sql(a) for a in role.attributes),
                    sql.Literal(role.connection_limit),
                )
            )
        )
        for s in role.settings:
            lines.append(text(sql.SQL("ALTER ROLE {} SET {}").format(name, assignment(s))))
        for s in role.db_settings:
            lines.append(
                text(
                    sql.SQL("ALTER ROLE {} IN DATABASE {} SET {}").format(
                        name, sql.Identifier("<db>"), assignment(s)
                    )
                )
            )
    for m in snapshot.memberships:
        admin = sql.SQL(" WITH ADMIN OPTION" if m.admin_option else "")
        lines.append(
            text(
                sql.SQL("GRANT {} TO {}{}").format(
                    sql.Identifier(m.role), sql.Identifier(m.member), admin
                )
            )
        )
    return "\n".join(lines) + "\n"


# DDL keywords cannot be parameters: every keyword that reaches SQL comes from these fixed
# tables, looked up by the (already validated) snapshot's value, never from its text.
_ATTRIBUTE_SQL = {word: sql.SQL(word) for _, kw in ATTRIBUTES for word in (kw, "NO" + kw)}
_PRIVILEGE_SQL = {word: sql.SQL(word) for word in DATABASE_PRIVILEGES}


def attribute_sql(keyword: str) -> sql.SQL:
    """The SQL keyword of a role attribute from the allow-list.

    Raises:
        GlobalsError: ``keyword`` is not a role attribute.

    """
    try:
        return _ATTRIBUTE_SQL[keyword]
    except KeyError:
        raise GlobalsError(f"{keyword!r} is not a role attribute") from None


def privilege_sql(privilege: str) -> sql.SQL:
    """The SQL keyword of a database privilege from the allow-list.

    Raises:
        GlobalsError: ``privilege`` is not a database privilege.

    """
    try:
        return _PRIVILEGE_SQL[privilege]
    except KeyError:
        raise GlobalsError(f"{privilege!r} is not a database privilege") from None


def assignment(setting: str) -> sql.Composed:
    """``name = value`` for ALTER ... SET, quoted the way pg_dumpall does it.

    Raises:
        GlobalsError: ``setting`` is not ``name=value`` with a parameter name.

    """
    name, sep, value = setting.partition("=")
    if not sep or not GUC_NAME.fullmatch(name):
        raise GlobalsError(f"{setting!r} is not name=value with a parameter name")
    # DDL: SET takes no parameters, so values are literals; list GUCs get one per element.
    if name in LIST_GUCS:
        elements = [e.strip().strip('"') for e in _split_list(value)]
        rendered = sql.SQL(", ").join(sql.Literal(e) for e in elements)
    else:
        rendered = sql.SQL("{}").format(sql.Literal(value))
    return sql.SQL("{} = {}").format(sql.Identifier(name), rendered)


def _split_list(value: str) -> list[str]:
    parts, current, quoted = [], "", False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]
