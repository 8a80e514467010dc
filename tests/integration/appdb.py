"""The application database every backup/restore test uses, and how to compare two."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def load_app(server, dbname="app"):
    """Create ``dbname`` on ``server`` and load the every-object-kind application into it."""
    from harness.drill.dataset import load_lesson_app

    return load_lesson_app(server.target(), FIXTURES, dbname=dbname)


def state_of(server, dbname="app"):
    """Schema (pg_dump --schema-only), roles, and per-table row count and content hash."""
    from psycopg import sql

    from harness.pg.globals import export_globals
    from harness.pg.sql import connect
    from harness.proc import run

    target = server.target(dbname)
    schema = run(
        [server.binaries.tool("pg_dump"), "--schema-only"], timeout=120, env=target.libpq_env()
    ).stdout
    schema = "\n".join(
        line
        for line in schema.splitlines()
        if not line.startswith(("-- Dumped", "\\restrict", "\\unrestrict"))
    )
    tables = {}
    with connect(target) as conn:
        names = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') AND c.relispopulated "
            "AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for nsp, rel in names:
            tables[f"{nsp}.{rel}"] = conn.execute(
                sql.SQL(
                    "SELECT count(*), "
                    "md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM {} x"
                ).format(sql.Identifier(nsp, rel))
            ).fetchone()
        settings = conn.execute(
            "SELECT coalesce(r.rolname, ''), s.setconfig FROM pg_db_role_setting s "
            "LEFT JOIN pg_roles r ON r.oid = s.setrole JOIN pg_database d "
            "ON d.oid = s.setdatabase WHERE d.datname = current_database() ORDER BY 1"
        ).fetchall()
    globals_ = export_globals(target)
    roles = {r.name: r for r in globals_.roles if r.name != "postgres"}
    return {
        "schema": schema,
        "tables": tables,
        "roles": roles,
        "memberships": set(globals_.memberships),
        "db_settings": settings,
        "db_comment": globals_.database_comment,
    }
