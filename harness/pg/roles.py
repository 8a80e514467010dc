"""Converge a server's roles to a backup's snapshot: plan, apply, undo.

A restore does not replay ``CREATE ROLE``: roles that already exist (Supabase's anon,
authenticated, service_role ...) are altered only where they differ, missing ones are
created, memberships the backup does not have are revoked. The changes are first computed as
a plan, a diff between the server and the snapshot that executes nothing: the dry run prints
it, the safety check reads which changes are destructive, and the real run executes exactly
that plan (and refuses if the server's roles moved in between). Every change knows its
inverse, so a restore that fails after converging puts the roles back, as far as it can.

Roles are cluster-wide: on a server the harness does not own, any change to a role that
already exists (attributes, settings, memberships) is a destructive step; creating a missing
role, and granting memberships that involve a role this restore creates, are not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import psycopg
from psycopg import sql

from harness.config import PgTarget
from harness.errors import DrillError, RestoreError
from harness.pg.globals import (
    Globals,
    Membership,
    Role,
    assignment,
    attribute_sql,
    privilege_sql,
    read_globals,
)
from harness.pg.sql import connect, explain_db_error
from harness.redact import get_logger

log = get_logger(__name__)

Action = Literal["create", "alter", "settings", "grant", "change membership", "revoke"]
PG16 = 160000


@dataclass(frozen=True)
class RoleChange:
    """One change to the server's roles, with what it replaces (for the undo)."""

    action: Action
    role: str
    member: str = ""
    wanted: Role | None = None  # create, alter, settings
    had: Role | None = None  # alter, settings
    membership: Membership | None = None  # grant, change membership
    had_membership: Membership | None = None  # change membership, revoke
    destructive: bool = False

    def describe(self) -> str:
        """One line for the plan and the log."""
        if self.action == "create" and self.wanted is not None:
            return f"create role {self.role} ({_options_text(self.wanted, None)})"
        if self.action == "alter" and self.wanted is not None and self.had is not None:
            new = _options_text(self.wanted, self.had)
            old = _options_text(self.had, self.wanted)
            return f"alter role {self.role}: {new} (was {old})"
        if self.action == "settings" and self.wanted is not None and self.had is not None:
            new = ", ".join(self.wanted.settings) or "none"
            old = ", ".join(self.had.settings) or "none"
            return f"set settings of role {self.role}: {new} (was {old})"
        if self.action == "grant" and self.membership is not None:
            return f"grant {self.role} to {self.member} ({_membership_text(self.membership)})"
        if self.action == "change membership" and self.membership and self.had_membership:
            return (
                f"change membership of {self.member} in {self.role}: "
                f"{_membership_text(self.membership)} (was "
                f"{_membership_text(self.had_membership)})"
            )
        return f"revoke {self.role} from {self.member} (not in the backup)"

    def statements(self, server_version: int) -> list[sql.Composed]:
        """The SQL that makes this change."""
        return _statements(self, server_version, undo=False)

    def undo_statements(self, server_version: int) -> list[sql.Composed]:
        """The SQL that reverts this change."""
        return _statements(self, server_version, undo=True)


def plan_roles(current: Globals, snapshot: Globals, *, me: str) -> tuple[RoleChange, ...]:
    """Every change that makes ``current`` hold ``snapshot``'s roles; executes nothing.

    Args:
        current: the server's roles now.
        snapshot: the roles the backup had.
        me: the role running the restore: its attributes are left alone (it cannot, and
            must not, take its own SUPERUSER or LOGIN away).

    """
    changes: list[RoleChange] = []
    created: set[str] = set()
    for role in snapshot.roles:
        have = current.role(role.name)
        if have is None:
            changes.append(RoleChange("create", role.name, wanted=role))
            created.add(role.name)
            continue
        if role.name != me and _options(role, have):
            changes.append(RoleChange("alter", role.name, wanted=role, had=have, destructive=True))
        if sorted(role.settings) != sorted(have.settings):
            changes.append(
                RoleChange("settings", role.name, wanted=role, had=have, destructive=True)
            )
    wanted = {(m.role, m.member): m for m in snapshot.memberships}
    have_members = {(m.role, m.member): m for m in current.memberships}
    # Revokes first: a membership the backup lacks can block one it has (the same two roles
    # the other way round are a circular membership, which the server refuses).
    known = {r.name for r in snapshot.roles}
    for key in sorted(set(have_members) - set(wanted)):
        if key[1] in known:
            changes.append(
                RoleChange("revoke", *key, had_membership=have_members[key], destructive=True)
            )
    for key, m in sorted(wanted.items()):
        old = have_members.get(key)
        if old is None:
            # A membership involving a role this restore creates changes no existing role's
            # rights to existing objects.
            fresh = m.role in created or m.member in created
            changes.append(RoleChange("grant", *key, membership=m, destructive=not fresh))
        elif not _same_membership(old, m):
            change = RoleChange("change membership", *key, membership=m, had_membership=old)
            changes.append(replace(change, destructive=True))
    return tuple(changes)


def current_roles(target: PgTarget) -> tuple[Globals, str]:
    """The server's roles and the name of the role ``target`` logs in as.

    Args:
        target: any database of the server.

    Raises:
        ConnectError: the server cannot be reached.

    """
    with connect(target) as conn:
        me = conn.execute("SELECT current_user").fetchone()
        return read_globals(conn), str(me[0]) if me else target.user


def apply_roles(
    target: PgTarget, snapshot: Globals, planned: tuple[RoleChange, ...]
) -> tuple[RoleChange, ...]:
    """Execute ``planned`` in one transaction; return the changes made.

    Args:
        target: any database of the server (roles are cluster-wide).
        snapshot: the roles the plan was computed for.
        planned: the plan, from :func:`plan_roles`; it is computed again inside the
            transaction, and must come out the same.

    Raises:
        RestoreError: the server's roles changed since the plan was computed, or a
            statement failed; no role was changed in either case.

    """
    if not planned:
        return ()
    try:
        with connect(target) as conn:  # commits on success, rolls back on any error
            me = conn.execute("SELECT current_user").fetchone()
            now = plan_roles(read_globals(conn), snapshot, me=str(me[0]) if me else target.user)
            if now != planned:
                raise RestoreError(
                    "the server's roles changed after the restore plan was made; nothing was "
                    "changed: run the restore again to plan against the current roles",
                    phase="roles",
                )
            version = conn.info.server_version
            for change in planned:
                for statement in change.statements(version):
                    conn.execute(statement)
    except psycopg.Error as exc:
        raise RestoreError(
            f"converging roles failed, no role was changed: {explain_db_error(exc)}",
            phase="roles",
        ) from exc
    for change in planned:
        log.info("roles: %s", change.describe())
    return planned


def undo_roles(target: PgTarget, applied: tuple[RoleChange, ...]) -> tuple[str, ...]:
    """Revert ``applied`` changes, newest first, each on its own; return what failed.

    Best effort, after a failed restore: every change that cannot be reverted is logged
    (with what to do by hand) and the others are still tried; nothing is raised.

    Args:
        target: any database of the server.
        applied: what :func:`apply_roles` returned.

    """
    if not applied:
        return ()
    failed: list[str] = []
    try:
        conn = connect(target, autocommit=True)
    except DrillError as exc:
        failed = [change.describe() for change in applied]
        log.error("could not undo the role changes (%s); revert by hand: %s", exc, failed)
        return tuple(failed)
    with conn:
        version = conn.info.server_version
        for change in reversed(applied):
            try:
                with conn.transaction():
                    for statement in change.undo_statements(version):
                        conn.execute(statement)
                log.warning("undid role change: %s", change.describe())
            except psycopg.Error as exc:
                failed.append(f"{change.describe()}: {explain_db_error(exc)}")
                log.error(
                    "could not undo role change %s: %s; revert it by hand",
                    change.describe(),
                    explain_db_error(exc),
                )
    return tuple(failed)


def apply_database_settings(target: PgTarget, snapshot: Globals, dbname: str) -> list[str]:
    """Owner, settings, role-in-database settings, grants and comment of database ``dbname``.

    Args:
        target: the server (any database).
        snapshot: the backup's globals.
        dbname: the database to apply them to (the restore's scratch database).

    Raises:
        RestoreError: a statement failed; none of them is kept.

    """
    db = sql.Identifier(dbname)
    try:
        with connect(target.with_dbname(dbname)) as conn:
            if snapshot.database_owner:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        db, sql.Identifier(snapshot.database_owner)
                    )
                )
            for setting in snapshot.database_settings:
                conn.execute(sql.SQL("ALTER DATABASE {} SET {}").format(db, assignment(setting)))
            for role in snapshot.roles:
                for setting in role.db_settings:
                    conn.execute(
                        sql.SQL("ALTER ROLE {} IN DATABASE {} SET {}").format(
                            sql.Identifier(role.name), db, assignment(setting)
                        )
                    )
            if snapshot.database_grants is not None:
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
                for g in snapshot.database_grants:
                    grantee = sql.Identifier(g.grantee) if g.grantee else sql.SQL("PUBLIC")
                    conn.execute(
                        sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                            privilege_sql(g.privilege),
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
    except psycopg.Error as exc:
        raise RestoreError(
            f"database-level settings failed: {explain_db_error(exc)}", phase="database settings"
        ) from exc
    return [f"applied owner, settings and grants of database {dbname}"]


# -- SQL ---------------------------------------------------------------------------------


def _options(want: Role, had: Role | None) -> list[tuple[sql.Composable, str]]:
    """``WITH`` options that turn ``had`` (None: a new role) into ``want``, with their text."""
    if had is None:
        words = list(want.attributes)
    else:
        words = [a for a in want.attributes if a not in set(had.attributes)]
    options: list[tuple[sql.Composable, str]] = [(attribute_sql(w), w) for w in words]
    limit = want.connection_limit
    if limit != (had.connection_limit if had else -1):
        options.append(
            (sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(limit)), f"CONNECTION LIMIT {limit}")
        )
    if want.valid_until != (had.valid_until if had else None):
        # A new role without an expiry keeps NULL; 'infinity' only clears an existing one.
        until = want.valid_until or "infinity"
        options.append(
            (sql.SQL("VALID UNTIL {}").format(sql.Literal(until)), f"VALID UNTIL '{until}'")
        )
    return options


def _options_sql(want: Role, had: Role | None) -> list[sql.Composable]:
    return [option for option, _ in _options(want, had)]


def _options_text(want: Role, had: Role | None) -> str:
    return " ".join(text for _, text in _options(want, had)) or "defaults"


def _membership_text(m: Membership) -> str:
    def yes(value: bool | None) -> str:  # noqa: FBT001 (a value, not a switch)
        return "yes" if value else "no"

    text = f"admin option {yes(m.admin_option)}"
    if m.inherit_option is not None:  # PostgreSQL 16+
        text += f", inherit {yes(m.inherit_option)}, set {yes(m.set_option)}"
    return text


def _statements(change: RoleChange, version: int, *, undo: bool) -> list[sql.Composed]:
    name = sql.Identifier(change.role)
    if change.action == "create" and change.wanted is not None:
        if undo:
            return [sql.SQL("DROP ROLE IF EXISTS {}").format(name)]
        options = _options_sql(change.wanted, None)
        create = sql.SQL("CREATE ROLE {}").format(name)
        if options:
            create = sql.SQL("CREATE ROLE {} WITH {}").format(name, sql.SQL(" ").join(options))
        return [create, *_set_all(name, change.wanted.settings, reset=False)]
    if change.action == "alter" and change.wanted is not None and change.had is not None:
        old, new = (change.wanted, change.had) if undo else (change.had, change.wanted)
        options = _options_sql(new, old)
        return [sql.SQL("ALTER ROLE {} WITH {}").format(name, sql.SQL(" ").join(options))]
    if change.action == "settings" and change.wanted is not None and change.had is not None:
        target = change.had if undo else change.wanted
        return _set_all(name, target.settings, reset=True)
    if change.action == "grant" and change.membership is not None:
        if undo:
            return [_revoke(change.membership)]
        return _grant(change.membership, None, version)
    if change.action == "change membership" and change.membership and change.had_membership:
        if undo:
            return _grant(change.had_membership, change.membership, version)
        return _grant(change.membership, change.had_membership, version)
    if change.action == "revoke" and change.had_membership is not None:
        if undo:
            return _grant(change.had_membership, None, version)
        return [_revoke(change.had_membership)]
    raise RestoreError(f"malformed role change {change!r}", phase="roles")


def _set_all(name: sql.Identifier, settings: tuple[str, ...], *, reset: bool) -> list[sql.Composed]:
    statements = [sql.SQL("ALTER ROLE {} RESET ALL").format(name)] if reset else []
    for setting in settings:
        statements.append(sql.SQL("ALTER ROLE {} SET {}").format(name, assignment(setting)))
    return statements


def _revoke(m: Membership) -> sql.Composed:
    return sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(m.role), sql.Identifier(m.member))


def _grant(m: Membership, previous: Membership | None, version: int) -> list[sql.Composed]:
    role, member = sql.Identifier(m.role), sql.Identifier(m.member)

    def flag(value: bool | None) -> sql.SQL:  # noqa: FBT001 (a value, not a switch)
        return sql.SQL("TRUE" if value else "FALSE")

    if version >= PG16:
        # PostgreSQL 16 updates the options of an existing grant in place.
        options = [sql.SQL("ADMIN {}").format(flag(m.admin_option))]
        if m.inherit_option is not None:
            options.append(sql.SQL("INHERIT {}").format(flag(m.inherit_option)))
            options.append(sql.SQL("SET {}").format(flag(m.set_option)))
        return [sql.SQL("GRANT {} TO {} WITH {}").format(role, member, sql.SQL(", ").join(options))]
    admin = sql.SQL(" WITH ADMIN OPTION" if m.admin_option else "")
    statements = [sql.SQL("GRANT {} TO {}{}").format(role, member, admin)]
    if previous is not None and previous.admin_option and not m.admin_option:
        statements.append(sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}").format(role, member))
    return statements


def _same_membership(a: Membership, b: Membership) -> bool:
    if a.admin_option != b.admin_option:
        return False
    if a.inherit_option is None or b.inherit_option is None:
        return True  # one side predates PostgreSQL 16: only ADMIN is comparable
    return (a.inherit_option, a.set_option) == (b.inherit_option, b.set_option)
