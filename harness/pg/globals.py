"""Cluster globals a database needs: roles with every attribute, memberships and settings.

Read from the catalogs (``pg_roles``, ``pg_auth_members``, ``pg_db_role_setting``), which
any role may read, so a non-superuser backup role can take them. Password verifiers are not
taken: they are secrets, and ``pg_authid`` needs superuser anyway; LOGIN roles created by a
restore need their passwords set again.

Restoring *converges* a server to the snapshot instead of replaying ``CREATE ROLE``: roles
that already exist (Supabase's anon, authenticated, service_role ...) are altered only where
they differ, missing ones are created, memberships absent from the backup are revoked.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Self

from psycopg import Connection, sql

from harness.config import PgTarget
from harness.errors import RestoreError
from harness.pg.sql import connect
from harness.redact import get_logger

log = get_logger(__name__)

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
    def from_json(cls, text: str) -> Self:
        """Parse what :meth:`to_json` wrote.

        Raises:
            ValueError: the document is not a globals snapshot.

        """
        data: dict[str, Any] = json.loads(text)
        grants = data.get("database_grants")
        return cls(
            roles=tuple(
                Role(
                    **{
                        **r,
                        "attributes": tuple(r["attributes"]),
                        "settings": tuple(r["settings"]),
                        "db_settings": tuple(r["db_settings"]),
                    }
                )
                for r in data["roles"]
            ),
            memberships=tuple(Membership(**m) for m in data["memberships"]),
            database_owner=data.get("database_owner", ""),
            database_settings=tuple(data.get("database_settings", ())),
            database_grants=None if grants is None else tuple(DatabaseGrant(**g) for g in grants),
            database_comment=data.get("database_comment"),
            notes=tuple(data.get("notes", ())),
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


# -- restore ---------------------------------------------------------------------------


def converge(target: PgTarget, snapshot: Globals, *, dbname: str) -> list[str]:
    """Make ``target``'s server hold the snapshot's roles; return what was changed.

    Args:
        target: a connection to any database of the server (changes are cluster-wide).
        snapshot: the roles to converge to.
        dbname: the restored database (for per-database settings, owner and grants).

    Raises:
        RestoreError: a statement failed; nothing of this step is kept (one transaction).

    """
    actions: list[str] = []
    with connect(target) as conn:
        try:
            current = read_globals(conn)
            me = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
            for role in snapshot.roles:
                actions += _converge_role(conn, role, current.role(role.name), me=me)
            actions += _converge_memberships(conn, snapshot, current)
            conn.commit()
        except Exception as exc:
            conn.rollback()
            raise RestoreError(f"converging roles failed: {exc}", phase="roles") from exc
    if dbname:
        actions += _database_level(target, snapshot, dbname)
    for action in actions:
        log.info("roles: %s", action)
    return actions


def _converge_role(conn: Connection[Any], role: Role, have: Role | None, *, me: str) -> list[str]:
    name = sql.Identifier(role.name)
    actions = []
    if have is None:
        conn.execute(sql.SQL("CREATE ROLE {}").format(name))
        actions.append(f"created role {role.name}")
        have = Role(role.name, ())
    if role.name != me and (
        set(role.attributes) != set(have.attributes)
        or role.connection_limit != have.connection_limit
        or role.valid_until != have.valid_until
    ):
        # DDL: attribute keywords cannot be parameters; they come from a fixed table.
        words = sql.SQL(" ").join(sql.SQL(a) for a in role.attributes)
        until = sql.Literal(role.valid_until or "infinity")
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH {} CONNECTION LIMIT {} VALID UNTIL {}").format(
                name, words, sql.Literal(role.connection_limit), until
            )
        )
        actions.append(f"set attributes of {role.name}: {' '.join(role.attributes)}")
    if tuple(sorted(role.settings)) != tuple(sorted(have.settings)):
        conn.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(name))
        for setting in role.settings:
            conn.execute(sql.SQL("ALTER ROLE {} SET {}").format(name, _assignment(setting)))
        actions.append(f"set {role.name}'s settings: {', '.join(role.settings) or 'none'}")
    return actions


def _converge_memberships(conn: Connection[Any], snapshot: Globals, current: Globals) -> list[str]:
    actions = []
    wanted = {(m.role, m.member): m for m in snapshot.memberships}
    have = {(m.role, m.member): m for m in current.memberships}
    for key, m in sorted(wanted.items()):
        if have.get(key) == m or (key in have and _same_membership(have[key], m)):
            continue
        options = [sql.SQL("ADMIN {}").format(sql.SQL("TRUE" if m.admin_option else "FALSE"))]
        if m.inherit_option is not None and conn.info.server_version >= 160000:
            options.append(
                sql.SQL("INHERIT {}").format(sql.SQL("TRUE" if m.inherit_option else "FALSE"))
            )
            options.append(sql.SQL("SET {}").format(sql.SQL("TRUE" if m.set_option else "FALSE")))
        if conn.info.server_version >= 160000:
            conn.execute(
                sql.SQL("GRANT {} TO {} WITH {}").format(
                    sql.Identifier(m.role), sql.Identifier(m.member), sql.SQL(", ").join(options)
                )
            )
        else:
            conn.execute(
                sql.SQL("GRANT {} TO {}{}").format(
                    sql.Identifier(m.role),
                    sql.Identifier(m.member),
                    sql.SQL(" WITH ADMIN OPTION" if m.admin_option else ""),
                )
            )
            if key in have and have[key].admin_option and not m.admin_option:
                conn.execute(
                    sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}").format(
                        sql.Identifier(m.role), sql.Identifier(m.member)
                    )
                )
        actions.append(f"granted {m.role} to {m.member}")
    known = {r.name for r in snapshot.roles}
    for role, member in sorted(set(have) - set(wanted)):
        if member in known:
            conn.execute(
                sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(member))
            )
            actions.append(f"revoked {role} from {member} (not in the backup)")
    return actions


def _same_membership(a: Membership, b: Membership) -> bool:
    if a.admin_option != b.admin_option:
        return False
    if a.inherit_option is None or b.inherit_option is None:
        return True  # one side predates PostgreSQL 16: only ADMIN is comparable
    return (a.inherit_option, a.set_option) == (b.inherit_option, b.set_option)


def _database_level(target: PgTarget, snapshot: Globals, dbname: str) -> list[str]:
    actions = []
    db = sql.Identifier(dbname)
    with connect(target.with_dbname(dbname)) as conn:
        try:
            if snapshot.database_owner:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        db, sql.Identifier(snapshot.database_owner)
                    )
                )
            for setting in snapshot.database_settings:
                conn.execute(sql.SQL("ALTER DATABASE {} SET {}").format(db, _assignment(setting)))
            for role in snapshot.roles:
                for setting in role.db_settings:
                    conn.execute(
                        sql.SQL("ALTER ROLE {} IN DATABASE {} SET {}").format(
                            sql.Identifier(role.name), db, _assignment(setting)
                        )
                    )
            if snapshot.database_grants is not None:
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
                for g in snapshot.database_grants:
                    grantee = sql.Identifier(g.grantee) if g.grantee else sql.SQL("PUBLIC")
                    conn.execute(
                        sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                            sql.SQL(g.privilege),  # catalog keyword, not input
                            db,
                            grantee,
                            sql.SQL(" WITH GRANT OPTION" if g.grantable else ""),
                        )
                    )
            if snapshot.database_comment is not None:
                conn.execute(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                        db, sql.Literal(snapshot.database_comment)
                    )
                )
            conn.commit()
        except Exception as exc:
            conn.rollback()
            raise RestoreError(
                f"database-level settings failed: {exc}", phase="database settings"
            ) from exc
    actions.append(f"applied owner, settings and grants of database {dbname}")
    return actions


def _assignment(setting: str) -> sql.Composed:
    """``name = value`` for ALTER ... SET, quoted the way pg_dumpall does it."""
    name, _, value = setting.partition("=")
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


def render_sql(snapshot: Globals) -> str:
    """A human-readable SQL rendering of the snapshot, for auditors (not used to restore)."""
    lines = [
        "-- Roles, memberships and settings taken with the backup.",
        "-- A restore converges to roles.json; this file is for reading.",
    ]
    for role in snapshot.roles:
        lines.append(f'CREATE ROLE "{role.name}";')
        lines.append(
            f'ALTER ROLE "{role.name}" WITH {" ".join(role.attributes)} '
            f"CONNECTION LIMIT {role.connection_limit};"
        )
        lines += [f'ALTER ROLE "{role.name}" SET {s};' for s in role.settings]
        lines += [f'ALTER ROLE "{role.name}" IN DATABASE <db> SET {s};' for s in role.db_settings]
    for m in snapshot.memberships:
        admin = " WITH ADMIN OPTION" if m.admin_option else ""
        lines.append(f'GRANT "{m.role}" TO "{m.member}"{admin};')
    return "\n".join(lines) + "\n"
