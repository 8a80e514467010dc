"""The restore plan: what a restore will do, computed before it does anything.

Read-only: whether the database exists and what it holds, and every change to the server's
roles (a diff against the backup's snapshot, :func:`harness.pg.roles.plan_roles`). The dry
run prints it; :func:`check_preconditions` decides on it, before any work, whether the
restore may run at all; the real run executes exactly its role changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import PgTarget
from harness.errors import RestoreError
from harness.pg.binaries import PgBinaries
from harness.pg.globals import Globals
from harness.pg.roles import RoleChange, current_roles, plan_roles
from harness.pg.sql import connect, database_exists, require_destructive
from harness.pg.toc import STEPS, count_by_step
from harness.sets.check import SetCheck
from harness.sets.manifest import Manifest


@dataclass(frozen=True)
class PlanStep:
    """One step of the ordered restore."""

    step: str
    description: str
    objects: int


@dataclass(frozen=True)
class RestorePlan:
    """What a restore will do, before it does anything."""

    source: str
    target: str
    dbname: str
    steps: tuple[PlanStep, ...]
    target_exists: bool
    will_drop: tuple[str, ...]
    role_changes: tuple[RoleChange, ...]
    tools: str

    @property
    def roles_to_create(self) -> tuple[str, ...]:
        """Roles the restore creates."""
        return tuple(c.role for c in self.role_changes if c.action == "create")

    @property
    def destructive(self) -> tuple[str, ...]:
        """Steps that change what already exists on the server (each needs the allow-list)."""
        found = []
        if self.target_exists:
            state = "dropping what it holds" if self.will_drop else "it is empty"
            found.append(f"replace database {self.dbname} ({state})")
        found += [c.describe() for c in self.role_changes if c.destructive]
        return tuple(found)

    def render(self) -> str:
        """The plan as numbered lines, for the terminal."""
        lines = [f"restore plan: {self.source} -> {self.target} (tools: {self.tools})"]
        if self.will_drop:
            lines.append(
                f"  --clean will replace database {self.dbname}, dropping: "
                + ", ".join(self.will_drop)
            )
        elif self.target_exists:
            lines.append(f"  database {self.dbname} exists and is empty: it will be replaced")
        for i, s in enumerate(self.steps, start=1):
            lines.append(f"  {i:2d}. {s.step:<10} {s.objects:6d}  {s.description}")
        existing = sum(c.destructive for c in self.role_changes)
        lines.append(
            f"  role changes: {len(self.role_changes)}"
            + (f", {existing} of them to roles that already exist" if existing else "")
        )
        for c in self.role_changes:
            lines.append(
                f"      {c.describe()}" + ("  [changes an existing role]" if c.destructive else "")
            )
        return "\n".join(lines)


def make_plan(
    checked: SetCheck, manifest: Manifest, target: PgTarget, tools: PgBinaries
) -> tuple[RestorePlan, Globals]:
    """Everything the restore will do, read from the server without changing it.

    Args:
        checked: the set, checked.
        manifest: its manifest.
        target: the server and database name to restore into.
        tools: the client tools the restore will use (named in the plan).

    Raises:
        GlobalsError: the set's roles snapshot is not valid.
        psycopg.Error: reading the server failed (the caller translates it).

    """
    server = target.with_dbname("postgres")
    exists = database_exists(target, target.dbname)
    contents = _contents(target) if exists else []
    snapshot = Globals.from_json((checked.root / manifest.artifact("globals").path).read_text())
    current, me = current_roles(server)
    counts = count_by_step(list(checked.toc))
    counts["roles"] = len(snapshot.roles)
    steps = tuple(PlanStep(step, description, counts.get(step, 0)) for step, description in STEPS)
    plan = RestorePlan(
        source=checked.location,
        target=target.display(),
        dbname=target.dbname,
        steps=steps,
        target_exists=exists,
        will_drop=tuple(contents),
        role_changes=plan_roles(current, snapshot, me=me),
        tools=tools.describe(),
    )
    return plan, snapshot


def check_preconditions(plan: RestorePlan, target: PgTarget, *, clean: bool) -> None:
    """Refuse, before any work, what the plan may not do.

    Args:
        plan: the plan.
        target: where it would run (its ``destructive_ok`` decides).
        clean: the caller asked to replace a non-empty database.

    Raises:
        RestoreError: the database holds objects and ``clean`` was not given.
        UnsafeTargetError: a destructive step on a target not allowed to take one.

    """
    if plan.will_drop and not clean:
        raise RestoreError(
            f"database {plan.dbname} on {plan.target} is not empty "
            f"({_summary(list(plan.will_drop))}); pass --clean to replace it, or restore into "
            "a new database name",
            phase="target",
        )
    steps = plan.destructive
    if steps:
        shown = "; ".join(steps[:10]) + (f"; and {len(steps) - 10} more" if len(steps) > 10 else "")
        require_destructive(target, f"make these changes ({shown})")


def _contents(target: PgTarget) -> list[str]:
    """User objects in the target database, as ``kind schema.name`` (at most 20)."""
    with connect(target) as conn:
        rows = conn.execute(
            "SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' "
            "WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'p' THEN 'table' "
            "ELSE 'relation' END || ' ' || n.nspname || '.' || c.relname "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%%' "
            "UNION ALL SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid "
            "AND d.deptype = 'e') ORDER BY 1 LIMIT 21"
        ).fetchall()
    return [str(r[0]) for r in rows]


def _summary(contents: list[str]) -> str:
    shown = ", ".join(contents[:20])
    return shown + (", ..." if len(contents) > 20 else "")
