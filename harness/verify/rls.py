"""Row level security *behaviour*: what each API role can see and change, table by table.

For every table with RLS enabled, the harness acts as each API role (Supabase's ``anon``;
``authenticated`` as each sampled user, with the JWT claims PostgREST sets in
``request.jwt.claims`` / ``request.jwt.claim.sub``; ``service_role``) and records the visible
row count and digest, and whether an INSERT, UPDATE and DELETE of a probe row would pass
privileges and policies. Probes run inside a savepoint that is always rolled back. The
matrix is derived from the catalog; callers may add their own cases. Taken before a disaster
and after the restore, the two matrices must be identical.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, errors, sql

from harness.config import PgTarget
from harness.pg.sql import connect, sequence_positions
from harness.redact import get_logger
from harness.verify.checks import CheckResult
from harness.verify.data import primary_key, row_hash
from harness.verify.session import fix_settings

log = get_logger(__name__)

NOBODY = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Actor:
    """Who a probe acts as: a database role, optionally with JWT claims."""

    label: str
    role: str
    claims: dict[str, Any] | None = None


@dataclass(frozen=True)
class Observation:
    """What one actor saw and could do on one table."""

    table: str
    actor: str
    visible_rows: int | None  # None: no SELECT privilege
    visible_digest: str
    insert: str
    update: str
    delete: str

    @property
    def key(self) -> str:
        """``table as actor``."""
        return f"{self.table} as {self.actor}"

    def summary(self) -> str:
        """One line, for diffs."""
        seen = "no select" if self.visible_rows is None else f"sees {self.visible_rows} rows"
        return (
            f"{seen} ({self.visible_digest}); insert {self.insert}, update {self.update}, "
            f"delete {self.delete}"
        )


@dataclass(frozen=True)
class RlsBehaviour:
    """Every observation, sorted."""

    observations: tuple[Observation, ...]

    def as_dict(self) -> dict[str, str]:
        """``table as actor`` -> summary."""
        return {o.key: o.summary() for o in self.observations}


def default_actors(conn: Connection[Any], *, sample_users: int = 2) -> list[Actor]:
    """anon, service_role and authenticated as a few users (and as an unknown user)."""
    roles = {
        str(r[0])
        for r in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated', "
            "'service_role')"
        ).fetchall()
    }
    actors = []
    if "anon" in roles:
        actors.append(Actor("anon", "anon", {"role": "anon"}))
    if "authenticated" in roles:
        users: list[str] = []
        if conn.execute("SELECT to_regclass('auth.users')").fetchone() != (None,):
            users = [
                str(r[0])
                for r in conn.execute(
                    sql.SQL("SELECT id::text FROM auth.users ORDER BY id LIMIT {}").format(
                        sql.Literal(sample_users)
                    )
                ).fetchall()
            ]
        for sub in [*users, NOBODY]:
            actors.append(
                Actor(
                    f"authenticated:{sub}", "authenticated", {"sub": sub, "role": "authenticated"}
                )
            )
    if "service_role" in roles:
        actors.append(Actor("service_role", "service_role", {"role": "service_role"}))
    return actors


def rls_behaviour(
    target: PgTarget, *, actors: list[Actor] | None = None, write_probes: bool | None = None
) -> RlsBehaviour:
    """Observe every RLS-enabled table as every actor; nothing is left changed.

    Args:
        target: the database (connect as a superuser, who can act as every role).
        actors: who to act as (default: :func:`default_actors`).
        write_probes: also probe INSERT/UPDATE/DELETE (rolled back; triggers do fire, and
            sequences they advance are put back where that is safe: see
            :func:`_reset_sequences`). Default: only on throwaway targets.

    """
    probe_writes = target.destructive_ok if write_probes is None else write_probes
    observations = []
    with connect(target) as conn:
        fix_settings(conn)
        positions = sequence_positions(conn)
        chosen = actors if actors is not None else default_actors(conn)
        tables = [
            (str(s), str(n))
            for s, n in conn.execute(
                # Temporary tables belong to their session (and other sessions' cannot be
                # read): they are no part of the database's behaviour.
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE c.relrowsecurity AND c.relkind IN ('r', 'p') "
                "AND c.relpersistence <> 't' ORDER BY 1, 2"
            ).fetchall()
        ]
        for schema, name in tables:
            template = _template_row(conn, schema, name)
            for actor in chosen:
                observations.append(
                    _observe(conn, schema, name, actor, template, write_probes=probe_writes)
                )
        conn.rollback()
        if probe_writes:
            _reset_sequences(conn, positions)
    return RlsBehaviour(observations=tuple(sorted(observations, key=lambda o: o.key)))


# Other client sessions on the probed database: one of them may call nextval at any time.
_OTHER_SESSIONS = """
SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


def _reset_sequences(conn: Connection[Any], positions: list[tuple[str, str, int, bool]]) -> None:
    """Put back sequences that probe triggers advanced (nextval is not transactional).

    Moving a sequence back is safe only if nobody else took a value from it meanwhile:
    otherwise the next insert would be handed a value already used. So a sequence is put
    back only when no other client session is connected to the database and its last value
    is the one this session took last (``currval``); otherwise it is left where the probes
    moved it (a gap, as any rolled-back insert leaves) and a warning names it. The drills
    take their fingerprints so that a gap left here never shows in a comparison.
    """
    now = {(s, n): (v, c) for s, n, v, c in sequence_positions(conn)}
    moved = [p for p in positions if now.get((p[0], p[1])) not in (None, (p[2], p[3]))]
    if not moved:
        return
    others = conn.execute(_OTHER_SESSIONS).fetchone()
    kept = [f"{schema}.{name}" for schema, name, _, _ in moved]
    if not (others and others[0]):
        kept = [f"{p[0]}.{p[1]}" for p in moved if not _put_back(conn, p, now[(p[0], p[1])][0])]
    conn.commit()
    if kept:
        log.warning(
            "RLS write probes advanced %s; left as they are, since another session may have "
            "taken values from them meanwhile (a gap, like any rolled-back insert leaves)",
            ", ".join(kept),
        )


def _put_back(conn: Connection[Any], position: tuple[str, str, int, bool], last: int) -> bool:
    """Move a sequence back to ``position`` if ``last``, its last value, was this session's.

    Returns:
        Whether it was moved.

    """
    schema, name, value, called = position
    sequence = sql.Identifier(schema, name).as_string(conn)
    conn.execute("SAVEPOINT drill_currval")
    try:
        (mine,) = conn.execute("SELECT currval(%s)", (sequence,)).fetchone() or (None,)
    except errors.ObjectNotInPrerequisiteState:  # this session never took a value
        mine = None
    conn.execute("ROLLBACK TO SAVEPOINT drill_currval")
    if mine != last:
        return False
    conn.execute("SELECT setval(%s, %s, %s)", (sequence, value, called))
    return True


def compare_behaviour(expected: RlsBehaviour, actual: RlsBehaviour) -> tuple[bool, str]:
    """Whether two matrices are identical, and the lines that differ."""
    a, b = expected.as_dict(), actual.as_dict()
    lines = [f"- {k}: {a[k]}" for k in sorted(set(a) - set(b))]
    lines += [f"+ {k}: {b[k]}" for k in sorted(set(b) - set(a))]
    lines += [f"~ {k}: was {a[k]}; now {b[k]}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    return not lines, "\n".join(lines)


@dataclass(frozen=True)
class _Template:
    """A row to probe with: its columns (name, type, writable) and values as text.

    Without a primary key the row is found by every column, compared as text: types such as
    point, json or xml have no equality operator, and the text form (session settings fixed)
    is what the template holds anyway.
    """

    key: tuple[str, ...]
    columns: tuple[tuple[str, str, bool], ...]
    values: tuple[str | None, ...]
    by_text: bool = False

    def value(self, column: str) -> str | None:
        return self.values[[c for c, _, _ in self.columns].index(column)]

    def type_of(self, column: str) -> sql.SQL:
        # A type name printed by format_type() from the catalog, not user input.
        return sql.SQL(next(t for c, t, _ in self.columns if c == column))


def behaviour_check(expected: RlsBehaviour, actual: RlsBehaviour) -> CheckResult:
    """One check: identical RLS behaviour, with the differences as detail."""
    same, diff = compare_behaviour(expected, actual)
    return CheckResult(
        "rls behaviour",
        ok=same,
        critical=True,
        detail=f"{len(actual.observations)} role/table observations identical" if same else diff,
    )


def _template_row(conn: Connection[Any], schema: str, name: str) -> _Template | None:
    """The first row by primary key (read as superuser): the probe's template."""
    key = primary_key(conn, schema, name)
    columns = tuple(
        (str(c), str(t), not (i or g))
        for c, t, i, g in conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attidentity <> '', "
            "attgenerated <> '' FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum",
            (sql.Identifier(schema, name).as_string(conn),),
        ).fetchall()
    )
    order = sql.SQL(", ").join(sql.Identifier(k) for k in key) if key else sql.SQL("1")
    texts: sql.Composable = sql.SQL(", ").join(
        sql.SQL("{}::text").format(sql.Identifier(c)) for c, _, _ in columns
    )
    if not columns:
        texts = sql.SQL("NULL")  # a table without columns: a row exists or not
    conn.execute("SET LOCAL row_security = off")
    row = conn.execute(
        sql.SQL("SELECT {} FROM {} ORDER BY {} LIMIT 1").format(
            texts, sql.Identifier(schema, name), order
        )
    ).fetchone()
    conn.execute("SET LOCAL row_security = on")
    if row is None:
        return None
    return _Template(
        key=key or tuple(c for c, _, _ in columns),
        columns=columns,
        values=tuple(None if v is None else str(v) for v in row)[: len(columns)],
        by_text=not key,
    )


def _observe(
    conn: Connection[Any],
    schema: str,
    name: str,
    actor: Actor,
    template: _Template | None,
    *,
    write_probes: bool,
) -> Observation:
    table = sql.Identifier(schema, name)
    conn.execute("SAVEPOINT drill_rls")
    try:
        conn.execute("SET LOCAL row_security = on")
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(actor.role)))
        claims = json.dumps(actor.claims or {}, sort_keys=True)
        conn.execute(
            "SELECT set_config('request.jwt.claims', %s, true), "
            "set_config('request.jwt.claim.sub', %s, true), "
            "set_config('request.jwt.claim.role', %s, true)",
            (
                claims,
                str((actor.claims or {}).get("sub", "")),
                str((actor.claims or {}).get("role", actor.role)),
            ),
        )
        visible, digest = _visible(conn, schema, name)
        results = [
            _probe(conn, kind, table, template) if write_probes else "not probed"
            for kind in ("insert", "update", "delete")
        ]
    finally:
        conn.execute("ROLLBACK TO SAVEPOINT drill_rls")
    return Observation(
        table=f"{schema}.{name}",
        actor=actor.label,
        visible_rows=visible,
        visible_digest=digest,
        insert=results[0],
        update=results[1],
        delete=results[2],
    )


def _visible(conn: Connection[Any], schema: str, name: str) -> tuple[int | None, str]:
    conn.execute("SAVEPOINT drill_probe")
    try:
        row = conn.execute(
            sql.SQL("SELECT count(*), coalesce(sum({h}), 0)::text FROM {t} t").format(
                h=row_hash(conn, schema, name), t=sql.Identifier(schema, name)
            )
        ).fetchone()
        conn.execute("RELEASE SAVEPOINT drill_probe")
        return (int(row[0]), str(row[1])) if row else (0, "0")
    except errors.InsufficientPrivilege:
        conn.execute("ROLLBACK TO SAVEPOINT drill_probe")
        return None, "-"


def _probe(
    conn: Connection[Any], kind: str, table: sql.Identifier, template: _Template | None
) -> str:
    """``allowed``, ``no privilege``, ``denied by policy``, ``no visible row`` or ``n/a``."""
    if template is None:
        return "n/a (empty table)"
    match: sql.Composable
    if template.by_text:
        match = sql.SQL(" AND ").join(
            sql.SQL("{}::text IS NOT DISTINCT FROM %s").format(sql.Identifier(c))
            for c in template.key
        )
    else:
        match = sql.SQL(" AND ").join(
            sql.SQL("{} IS NOT DISTINCT FROM %s::{}").format(sql.Identifier(c), template.type_of(c))
            for c in template.key
        )
    if not template.key:
        match = sql.SQL("true")
    match_values = [template.value(c) for c in template.key]
    writable = [c for c, _, ok in template.columns if ok]
    if kind == "insert" and not writable:
        query = sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table)
        params = []
    elif kind == "insert":
        query = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({})").format(
            table,
            sql.SQL(", ").join(sql.Identifier(c) for c in writable),
            sql.SQL(", ").join(sql.SQL("%s::{}").format(template.type_of(c)) for c in writable),
        )
        params = [template.value(c) for c in writable]
    elif kind == "update":
        if not writable:
            return "n/a (no writable column)"
        first = sql.Identifier(writable[0])
        query = sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(table, first, first, match)
        params = match_values
    else:
        query = sql.SQL("DELETE FROM {} WHERE {}").format(table, match)
        params = match_values
    conn.execute("SAVEPOINT drill_probe")
    try:
        affected = conn.execute(query, params).rowcount
        outcome = "allowed" if kind == "insert" or affected > 0 else "no visible row"
    except errors.InsufficientPrivilege as exc:
        policy = "row-level security" in str(exc) or "policy" in str(exc)
        outcome = "denied by policy" if policy else "no privilege"
    except errors.IntegrityError:
        outcome = "allowed"  # privileges and policies passed; the copy hit a constraint
    except Exception as exc:  # another error class is itself part of the behaviour
        outcome = f"error {type(exc).__name__}"
    finally:
        conn.execute("ROLLBACK TO SAVEPOINT drill_probe")
    return outcome
