"""Catalog sections of foreign data wrappers, foreign servers, user mappings, large objects.

Options whose name suggests a credential (``password``, ``secret``, ``token``, ``key``) are
shown as present, never with their value; user mappings are listed without their options at
all: those hold credentials, and only their owner or a superuser may read them, so a backup
role and a restoring superuser would see them differently.

Large objects can number in the millions: those with their owner's default privileges and no
comment are counted per owner; the others (granted, revoked or commented) are listed one by
one. Their content is part of the data fingerprint.
"""

from __future__ import annotations

from psycopg import sql

from harness.verify.acl import acl_items

# {opts} is a text[] column of "name=value" options (a constant of this module).
_OPTIONS = (
    "array_to_string(array(SELECT CASE WHEN split_part(o, '=', 1) ~* "
    "'pass|secret|token|key' THEN split_part(o, '=', 1) || '=(not compared)' ELSE o END "
    "FROM unnest({opts}) o ORDER BY o), ',')"
)


def _options(column: str) -> sql.Composed:
    return sql.SQL(_OPTIONS).format(opts=sql.SQL(column))


def object_queries() -> dict[str, sql.SQL | sql.Composed]:
    """Section name -> query of ``(name, description)`` rows."""
    lo_acl = acl_items("m.lomacl", "'L'", "m.lomowner")
    return {
        "foreign_data_wrappers": sql.SQL(
            "SELECT w.fdwname, concat_ws(' | ', 'owner=' || pg_get_userbyid(w.fdwowner), "
            "'handler=' || nullif(w.fdwhandler, 0)::regproc::text, "
            "'validator=' || nullif(w.fdwvalidator, 0)::regproc::text, "
            "'options=' || {options}, 'acl=' || {acl}, "
            "'comment=' || obj_description(w.oid, 'pg_foreign_data_wrapper')) "
            "FROM pg_foreign_data_wrapper w"
        ).format(options=_options("w.fdwoptions"), acl=acl_items("w.fdwacl", "'F'", "w.fdwowner")),
        "foreign_servers": sql.SQL(
            "SELECT s.srvname, concat_ws(' | ', 'wrapper=' || w.fdwname, "
            "'owner=' || pg_get_userbyid(s.srvowner), 'type=' || s.srvtype, "
            "'version=' || s.srvversion, 'options=' || {options}, 'acl=' || {acl}, "
            "'comment=' || obj_description(s.oid, 'pg_foreign_server')) "
            "FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw"
        ).format(options=_options("s.srvoptions"), acl=acl_items("s.srvacl", "'S'", "s.srvowner")),
        "user_mappings": sql.SQL(
            "SELECT CASE WHEN u.umuser = 0 THEN 'PUBLIC' ELSE u.usename END || ' on ' "
            "|| u.srvname, 'user mapping (options not compared)' FROM pg_user_mappings u"
        ),
        "large_objects": sql.SQL(
            "WITH m AS (SELECT m.oid, pg_get_userbyid(m.lomowner) AS owner, {acl} AS acl, "
            "{default} AS default_acl, obj_description(m.oid, 'pg_largeobject') AS comment "
            "FROM pg_largeobject_metadata m) "
            "SELECT m.oid::text, concat_ws(' | ', 'owner=' || m.owner, 'acl=' || m.acl, "
            "'comment=' || m.comment) FROM m "
            "WHERE m.acl <> m.default_acl OR m.comment IS NOT NULL "
            "UNION ALL SELECT 'owned by ' || m.owner, count(*) || ' with the owner''s "
            "default privileges and no comment' FROM m "
            "WHERE m.acl = m.default_acl AND m.comment IS NULL GROUP BY m.owner"
        ).format(
            acl=lo_acl,
            default=acl_items("NULL::aclitem[]", "'L'", "m.lomowner"),
        ),
    }
