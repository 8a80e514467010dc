"""The lesson-booking application the drills protect, and the invariants it must keep.

Loaded from ``fixtures/`` (Supabase's roles, then every object kind with scaled data), plus
database-level settings and the canary table. :func:`invariants` are the application's own
promises, checked after every recovery: no orphan reservations, the audit trigger still
records changes, the event trigger still blocks DROP outside development.
"""

from __future__ import annotations

from pathlib import Path

from psycopg import errors, sql

from harness.config import PgTarget
from harness.drill import canary
from harness.pg.sql import connect, create_database, run_sql_file, sequence_positions
from harness.verify.checks import CheckResult


def load_lesson_app(
    server: PgTarget, fixtures: Path, *, dbname: str = "app", scale: int = 1
) -> PgTarget:
    """Create ``dbname`` on ``server``'s cluster and load the application into it.

    Returns:
        The superuser target of the new database.

    """
    app = server.with_dbname(dbname)
    create_database(app, dbname)
    run_sql_file(app, fixtures / "supabase_roles.sql")
    with connect(app) as conn:
        conn.execute("SELECT set_config('drill.scale', %s, false)", (str(scale),))
        conn.execute(sql.SQL((fixtures / "every_object.sql").read_text()))  # trusted fixture
        conn.commit()
    with connect(app, autocommit=True) as conn:
        db = sql.Identifier(dbname)
        conn.execute(sql.SQL("ALTER DATABASE {} SET app.environment = 'production'").format(db))
        conn.execute(
            sql.SQL("ALTER ROLE anon IN DATABASE {} SET statement_timeout = '5s'").format(db)
        )
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS 'lesson booking'").format(db))
    canary.install(app)
    return app


def invariants(target: PgTarget) -> list[CheckResult]:
    """The application's promises, checked without leaving a trace (all rolled back)."""
    results = []
    with connect(target) as conn:
        positions = sequence_positions(conn)
        orphans = conn.execute(
            "SELECT count(*) FROM public.reservations r WHERE NOT EXISTS "
            "(SELECT 1 FROM public.lesson_slots s WHERE s.id = r.slot_id) OR NOT EXISTS "
            "(SELECT 1 FROM public.profiles p WHERE p.id = r.student_id)"
        ).fetchone()
        n = int(orphans[0]) if orphans else -1
        results.append(
            CheckResult(
                "invariant: no orphan reservations",
                ok=n == 0,
                critical=True,
                detail=f"{n} orphan reservations",
            )
        )
        before = conn.execute("SELECT count(*) FROM public.audit_log").fetchone()
        changed = conn.execute(
            "UPDATE public.reservations SET note = coalesce(note, '') "
            "WHERE id = (SELECT min(id) FROM public.reservations)"
        ).rowcount
        after = conn.execute("SELECT count(*) FROM public.audit_log").fetchone()
        fired = bool(before and after and changed and after[0] == before[0] + 1)
        results.append(
            CheckResult(
                "invariant: audit trigger records changes",
                ok=fired,
                critical=True,
                detail="an UPDATE added one audit_log row"
                if fired
                else "an UPDATE left audit_log unchanged",
            )
        )
        conn.rollback()
        try:
            conn.execute("DROP TABLE public.page_views")
            blocked, detail = False, "DROP TABLE went through"
        except errors.RaiseException as exc:
            blocked, detail = "DROP is blocked" in str(exc), str(exc).splitlines()[0]
        conn.rollback()
        results.append(
            CheckResult(
                "invariant: event trigger blocks DROP", ok=blocked, critical=True, detail=detail
            )
        )
        # The audit row's id came from a sequence, and nextval is not rolled back.
        for schema, name, value, called in positions:
            conn.execute(
                "SELECT setval(%s, %s, %s)",
                (sql.Identifier(schema, name).as_string(conn), value, called),
            )
        conn.commit()
    return results
