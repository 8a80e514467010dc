"""Privileges by meaning: an ACL as the set of what it grants, not as the text stored.

PostgreSQL stores NULL for an object whose privileges were never changed: it then has the
default privileges of its kind for its owner (``acldefault(kind, owner)``). An explicit grant
that equals the default (an owner granting ALL on their own table) stores a non-NULL ACL
that grants exactly the same; pg_dump rightly leaves such grants out, so the restored object
has NULL again. Comparing the stored text would call that a change.

Every ACL is therefore expanded with ``aclexplode`` (NULL first replaced by the default) into
``(grantee, grantor, privilege, grantable)`` items and rendered in a canonical order:
``grantee=PRIV,PRIV*/grantor`` per grantee and grantor, ``*`` marking WITH GRANT OPTION,
``PUBLIC`` for the pseudo-role, ``none`` for an empty set.

Default privileges (``pg_default_acl``) differ: a missing entry means the built-in default. A
global entry (for every schema) replaces the built-in default, so one equal to it means the
same as none; a per-schema entry adds to it, so an empty one means the same as none. Entries
that mean nothing are dropped before comparing.
"""

from __future__ import annotations

from psycopg import sql

# A canonical rendering of aclexplode(...) rows. {items} is an aclitem[] expression of this
# package's constant queries (never input).
_RENDER = (
    "coalesce((SELECT string_agg(g.item, ' ' ORDER BY g.item) FROM (SELECT CASE WHEN "
    "x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END || '=' || "
    "string_agg(x.privilege_type || CASE WHEN x.is_grantable THEN '*' ELSE '' END, ',' "
    "ORDER BY x.privilege_type) || '/' || pg_get_userbyid(x.grantor) AS item "
    "FROM aclexplode({items}) x GROUP BY x.grantee, x.grantor) g), 'none')"
)

# pg_default_acl.defaclobjtype -> the acldefault() kind of the objects it applies to.
_DEFAULT_ACL_KIND = "CASE {t} WHEN 'S' THEN 's' WHEN 'r' THEN 'r' WHEN 'f' THEN 'f' "
_DEFAULT_ACL_KIND += "WHEN 'T' THEN 'T' WHEN 'n' THEN 'n' WHEN 'L' THEN 'L' END::\"char\""


def acl_items(acl: str, kind: str, owner: str) -> sql.Composed:
    """The canonical privileges of an object, NULL meaning the default for its owner.

    Args:
        acl: column holding the ``aclitem[]`` (``c.relacl``); a constant of the caller.
        kind: ``acldefault`` kind: a quoted letter (``'f'``) or an expression giving one.
        owner: column holding the owner's oid (``c.relowner``).

    """
    items = sql.SQL("coalesce({}, acldefault({}, {}))").format(
        sql.SQL(acl), sql.SQL(kind), sql.SQL(owner)
    )
    return sql.SQL(_RENDER).format(items=items)


def explicit_items(acl: str) -> sql.Composed:
    """The canonical privileges of an ACL whose NULL means "no privileges" (columns)."""
    # aclexplode() is strict: NULL gives no rows, as an empty ACL does.
    return sql.SQL(_RENDER).format(items=sql.SQL(acl))


def default_acl_query() -> sql.Composed:
    """``(role in schema on type, privileges)`` of the default-privilege entries that matter.

    A global entry equal to the built-in default, and a per-schema entry granting nothing,
    are left out: they mean the same as no entry at all.
    """
    kind = sql.SQL(_DEFAULT_ACL_KIND.replace("{t}", "d.defaclobjtype"))
    built_in = sql.SQL("acldefault({}, d.defaclrole)").format(kind)
    return sql.SQL(
        "SELECT pg_get_userbyid(d.defaclrole) || ' in ' || coalesce(n.nspname, '(all)') "
        "|| ' on ' || d.defaclobjtype::text, {items} FROM pg_default_acl d "
        "LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace "
        "WHERE CASE WHEN d.defaclnamespace = 0 THEN {differs} "
        "ELSE cardinality(d.defaclacl) > 0 END"
    ).format(
        items=sql.SQL(_RENDER).format(items=sql.SQL("d.defaclacl")),
        differs=sql.SQL("{} IS DISTINCT FROM {}").format(
            sql.SQL(_RENDER).format(items=sql.SQL("d.defaclacl")),
            sql.SQL(_RENDER).format(items=built_in),
        ),
    )
