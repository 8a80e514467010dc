"""Catalog fingerprint: a normalized, OID-free description of everything but the data.

Each section maps an object's stable name (``schema.table.column``, ``table.policy`` ...) to
a one-line description built from the server's own deparsers (``pg_get_functiondef``,
``pg_get_triggerdef``, ``pg_get_expr``, ``pg_get_constraintdef`` ...), owners, privileges
(by meaning, see :mod:`harness.verify.acl`: NULL is the owner's default, grant order does not
matter), flags and comments. Two databases with the same sections have the same schema,
roles, RLS, grants and comments. Objects of temporary schemas (any session's) are left out:
they are never part of a backup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql

from harness.config import PgTarget
from harness.pg.globals import read_globals
from harness.pg.sql import sequence_positions
from harness.verify.acl import acl_items, default_acl_query, explicit_items
from harness.verify.objects import object_queries
from harness.verify.session import in_snapshot

# System schemas, TOAST schemas, and the temporary schemas of every session (temporary
# objects are never part of a backup): {n} is a namespace alias of the constant queries.
_USER_NS = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND {n}.nspname NOT LIKE 'pg\\_toast%%' AND {n}.nspname NOT LIKE 'pg\\_temp%%'"
)
USER_NS = _USER_NS.replace("{n}", "n")
NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} "
    "AND d.classid = '{cls}'::regclass AND d.deptype = 'e')"
)


def _not_ext(oid: str, cls: str) -> sql.Composable:
    return sql.SQL(NOT_EXTENSION.format(oid=oid, cls=cls))


def _queries() -> dict[str, sql.SQL | sql.Composed]:
    ns = sql.SQL(USER_NS)
    return {
        "schemas": sql.SQL(
            "SELECT n.nspname, concat_ws(' | ', 'owner=' || pg_get_userbyid(n.nspowner), "
            "'acl=' || {acl}, 'comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), "
            "'')) FROM pg_namespace n WHERE {ns} AND n.nspname NOT LIKE 'pg\\_%%'"
        ).format(acl=acl_items("n.nspacl", "'n'", "n.nspowner"), ns=ns),
        "relations": sql.SQL(
            "SELECT n.nspname || '.' || c.relname, concat_ws(' | ', 'kind=' || c.relkind::text, "
            "'owner=' || pg_get_userbyid(c.relowner), 'persistence=' || c.relpersistence::text, "
            "'acl=' || {acl}, 'options=' || coalesce(c.reloptions::text, ''), "
            "'partition=' || coalesce(pg_get_expr(c.relpartbound, c.oid), ''), "
            "'comment=' || coalesce(obj_description(c.oid, 'pg_class'), ''), "
            "'server=' || s.srvname, 'foreign options=' || "
            "array_to_string(array(SELECT o FROM unnest(f.ftoptions) o ORDER BY o), ',')) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_foreign_table f ON f.ftrelid = c.oid "
            "LEFT JOIN pg_foreign_server s ON s.oid = f.ftserver "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {ns} AND {ext}"
        ).format(
            acl=acl_items(
                "c.relacl",
                "CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\"",
                "c.relowner",
            ),
            ns=ns,
            ext=_not_ext("c.oid", "pg_class"),
        ),
        "rls": sql.SQL(
            "SELECT n.nspname || '.' || c.relname, 'enabled=' || c.relrowsecurity "
            "|| ' forced=' || c.relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND {ns} AND {ext}"
        ).format(ns=ns, ext=_not_ext("c.oid", "pg_class")),
        "columns": sql.SQL(
            "SELECT n.nspname || '.' || c.relname || '.' || a.attname, concat_ws(' | ', "
            "'#' || a.attnum, format_type(a.atttypid, a.atttypmod), "
            "CASE WHEN a.attnotnull THEN 'not null' END, "
            "'default=' || pg_get_expr(ad.adbin, ad.adrelid), "
            "'identity=' || nullif(a.attidentity::text, ''), "
            "'generated=' || nullif(a.attgenerated::text, ''), "
            "'collation=' || CASE WHEN a.attcollation <> t.typcollation "
            "THEN (SELECT collname FROM pg_collation WHERE oid = a.attcollation) END, "
            "'acl=' || {acl}, "
            "'comment=' || col_description(c.oid, a.attnum)) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
            "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', "
            "'c') AND {ns} AND {ext}"
        ).format(
            acl=explicit_items("a.attacl"),
            ns=ns,
            ext=_not_ext("c.oid", "pg_class"),
        ),
        "constraints": sql.SQL(
            "SELECT coalesce(n.nspname || '.' || c.relname, tn.nspname || '.' || t.typname) "
            "|| '.' || k.conname, pg_get_constraintdef(k.oid, true) || coalesce(' | comment=' "
            "|| obj_description(k.oid, 'pg_constraint'), '') FROM pg_constraint k "
            "LEFT JOIN pg_class c ON c.oid = k.conrelid "
            "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_type t ON t.oid = k.contypid "
            "LEFT JOIN pg_namespace tn ON tn.oid = t.typnamespace "
            "JOIN pg_namespace kn ON kn.oid = k.connamespace "
            "WHERE {ns} AND {ext}"
        ).format(ns=sql.SQL(_USER_NS.replace("{n}", "kn")), ext=_not_ext("k.oid", "pg_constraint")),
        "indexes": sql.SQL(
            "SELECT n.nspname || '.' || c.relname, pg_get_indexdef(c.oid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE {ns} AND {ext}"
        ).format(ns=ns, ext=_not_ext("i.indrelid", "pg_class")),
        "views": sql.SQL(
            "SELECT n.nspname || '.' || c.relname, pg_get_viewdef(c.oid, true) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('v', 'm') AND {ns} AND {ext}"
        ).format(ns=ns, ext=_not_ext("c.oid", "pg_class")),
        "functions": sql.SQL(
            "SELECT n.nspname || '.' || p.proname || '(' || "
            "pg_get_function_identity_arguments(p.oid) || ')', concat_ws(' | ', "
            "CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END, "
            "'owner=' || pg_get_userbyid(p.proowner), 'acl=' || {acl}, "
            "'comment=' || obj_description(p.oid, 'pg_proc')) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {ns} AND {ext}"
        ).format(
            acl=acl_items("p.proacl", "'f'", "p.proowner"), ns=ns, ext=_not_ext("p.oid", "pg_proc")
        ),
        "triggers": sql.SQL(
            "SELECT n.nspname || '.' || c.relname || '.' || g.tgname, "
            "pg_get_triggerdef(g.oid, true) || ' | enabled=' || g.tgenabled::text "
            "|| coalesce(' | comment=' || obj_description(g.oid, 'pg_trigger'), '') "
            "FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT g.tgisinternal AND {ns}"
        ).format(ns=ns),
        "event_triggers": sql.SQL(
            "SELECT e.evtname, concat_ws(' | ', e.evtevent, 'enabled=' || e.evtenabled::text, "
            "'tags=' || coalesce(array_to_string(e.evttags, ','), ''), "
            "'function=' || e.evtfoid::regproc::text, 'owner=' || pg_get_userbyid(e.evtowner)) "
            "FROM pg_event_trigger e"
        ),
        "types": sql.SQL(
            "SELECT n.nspname || '.' || t.typname, concat_ws(' | ', CASE t.typtype "
            "WHEN 'e' THEN 'enum ' || (SELECT string_agg(e.enumlabel, ',' ORDER BY "
            "e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) "
            "WHEN 'd' THEN 'domain ' || format_type(t.typbasetype, t.typtypmod) || CASE WHEN "
            "t.typnotnull THEN ' not null' ELSE '' END || coalesce(' default ' || "
            "t.typdefault, '') "
            "WHEN 'c' THEN 'composite ' || (SELECT string_agg(a.attname || ' ' || "
            "format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) FROM pg_attribute a "
            "WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) "
            "WHEN 'r' THEN 'range ' || (SELECT concat_ws(' ', format_type(r.rngsubtype, NULL), "
            "'collation=' || nullif(r.rngcollation, 0)::regcollation::text, "
            "'opclass=' || (SELECT o.opcname FROM pg_opclass o WHERE o.oid = r.rngsubopc), "
            "'canonical=' || nullif(r.rngcanonical, 0)::regproc::text, "
            "'diff=' || nullif(r.rngsubdiff, 0)::regproc::text) FROM pg_range r "
            "WHERE r.rngtypid = t.oid) "
            "ELSE 'type ' || t.typtype::text END, 'owner=' || pg_get_userbyid(t.typowner), "
            "'acl=' || {acl}, 'comment=' || obj_description(t.oid, 'pg_type')) "
            "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE {ns} AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND "
            "(SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')) AND {ext}"
        ).format(
            acl=acl_items("t.typacl", "'T'", "t.typowner"), ns=ns, ext=_not_ext("t.oid", "pg_type")
        ),
        "extensions": sql.SQL(
            "SELECT x.extname, x.extversion || ' in ' || n.nspname FROM pg_extension x "
            "JOIN pg_namespace n ON n.oid = x.extnamespace"
        ),
        "policies": sql.SQL(
            "SELECT n.nspname || '.' || c.relname || '.' || p.polname, concat_ws(' | ', "
            "'command=' || p.polcmd::text, CASE WHEN p.polpermissive THEN 'permissive' "
            "ELSE 'restrictive' END, 'roles=' || (SELECT string_agg(CASE WHEN r = 0 THEN "
            "'public' ELSE pg_get_userbyid(r) END, ',' ORDER BY CASE WHEN r = 0 THEN 'public' "
            "ELSE pg_get_userbyid(r) END) FROM unnest(p.polroles) r), "
            "'using=' || pg_get_expr(p.polqual, p.polrelid), "
            "'with check=' || pg_get_expr(p.polwithcheck, p.polrelid), "
            "'comment=' || obj_description(p.oid, 'pg_policy')) FROM pg_policy p "
            "JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE {ns}"
        ).format(ns=ns),
        "default_privileges": default_acl_query(),
        "publications": sql.SQL(
            "SELECT p.pubname, concat_ws(' | ', 'owner=' || pg_get_userbyid(p.pubowner), "
            "'all tables=' || p.puballtables, 'insert=' || p.pubinsert, 'update=' || "
            "p.pubupdate, 'delete=' || p.pubdelete, 'truncate=' || p.pubtruncate, "
            "'tables=' || coalesce((SELECT string_agg(t.schemaname || '.' || t.tablename, ',' "
            "ORDER BY t.schemaname, t.tablename) FROM pg_publication_tables t "
            "WHERE t.pubname = p.pubname), '')) "
            "FROM pg_publication p"
        ),
        **object_queries(),
    }


@dataclass(frozen=True)
class CatalogFingerprint:
    """Sections of ``(object name, description)`` pairs, sorted by name."""

    sections: dict[str, tuple[tuple[str, str], ...]]

    def section(self, name: str) -> dict[str, str]:
        """One section as a dict."""
        return dict(self.sections.get(name, ()))


def catalog_fingerprint(target: PgTarget) -> CatalogFingerprint:
    """Describe ``target``'s database and the roles of its server."""
    return in_snapshot(target, read_catalog_fingerprint)


def read_catalog_fingerprint(conn: Connection[Any]) -> CatalogFingerprint:
    """Describe the catalog on an open connection (settings fixed by the caller)."""
    sections = {name: _rows(conn, query) for name, query in _queries().items()}
    sections["sequence_values"] = _sequence_values(conn)
    sections.update(_globals(conn))
    return CatalogFingerprint(sections=sections)


def _rows(conn: Connection[Any], query: sql.SQL | sql.Composed) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in conn.execute(query).fetchall()))


def _sequence_values(conn: Connection[Any]) -> tuple[tuple[str, str], ...]:
    definitions = {
        (str(schema), str(name)): str(definition)
        for schema, name, definition in conn.execute(
            "SELECT n.nspname, c.relname, concat_ws(' ', format_type(s.seqtypid, NULL), "
            "'start', s.seqstart, 'increment', s.seqincrement, 'min', s.seqmin, 'max', "
            "s.seqmax, 'cache', s.seqcache, CASE WHEN s.seqcycle THEN 'cycle' END) "
            "FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace"
        ).fetchall()
    }
    return tuple(
        (
            f"{schema}.{name}",
            f"{definitions.get((schema, name), '')} | last_value={value} is_called={called}",
        )
        for schema, name, value, called in sequence_positions(conn)
    )


def _globals(conn: Connection[Any]) -> dict[str, tuple[tuple[str, str], ...]]:
    snapshot = read_globals(conn)
    roles = tuple(
        sorted(
            (
                r.name,
                f"{' '.join(r.attributes)} | connection limit {r.connection_limit} | valid "
                f"until {r.valid_until or 'forever'} | settings {', '.join(r.settings)} | in "
                f"this database {', '.join(r.db_settings)}",
            )
            for r in snapshot.roles
        )
    )
    memberships = tuple(
        sorted(
            (
                f"{m.member} in {m.role}",
                f"admin={m.admin_option}"
                + (
                    f" inherit={m.inherit_option} set={m.set_option}"
                    if m.inherit_option is not None
                    else ""
                ),
            )
            for m in snapshot.memberships
        )
    )
    # The database's privileges by meaning, as every other object's (harness.verify.acl).
    row = conn.execute(
        sql.SQL("SELECT {} FROM pg_database d WHERE d.datname = current_database()").format(
            acl_items("d.datacl", "'d'", "d.datdba")
        )
    ).fetchone()
    database = (
        (
            "database",
            f"owner={snapshot.database_owner} | settings {', '.join(snapshot.database_settings)} | "
            f"acl={row[0] if row else ''} | comment={snapshot.database_comment or ''}",
        ),
    )
    return {"roles": roles, "memberships": memberships, "database": database}
