"""Find the rows behind a differing table digest, without a second full hashing pass.

With a primary key, both sides are bucketed by key ranges (equal widths between the
reference's smallest and largest integer key, or boundaries taken from a small page sample
of the reference, ``TABLESAMPLE SYSTEM``) and aggregated per bucket in one grouped pass
each, both sides at once. The buckets whose count or digest differ are narrowed with the
same hash (integer keys: split again and aggregated over their key ranges only, until few
rows are left), then read row by row (primary-key range scans) and compared key by key.
Without a primary key, rows are compared as a multiset of row hashes, and the differing
rows are shown by content. Like the digests, every read is of the table's own rows
(``ONLY``), never of its inheritance children.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql

from harness.config import PgTarget
from harness.pg.sql import connect
from harness.verify.data import primary_key, row_hash
from harness.verify.session import fix_settings

SMALL = 5000  # tables up to this many rows are compared row by row directly
BUCKETS = 4096  # key ranges of the one full pass over each side
NARROW = 2000  # differing buckets holding more rows than this are split again ...
SPLIT = 64  # ... into this many narrower ranges each


@dataclass(frozen=True)
class RowDifferences:
    """Rows that differ between a reference table and the current one."""

    table: str
    method: str
    missing: tuple[str, ...]  # keys (or row text) in the reference, absent now
    extra: tuple[str, ...]  # present now, absent in the reference
    changed: tuple[str, ...]  # same key, different content
    rows_read: int  # rows hashed on both sides to find them (after the grouped pass)
    full_passes: int  # full passes over each side's table
    seconds: float

    def render(self, limit: int = 10) -> str:
        """A short human-readable summary (first ``limit`` of each kind)."""
        parts = [f"{self.table} ({self.method})"]
        for label, rows in (
            ("missing", self.missing),
            ("extra", self.extra),
            ("changed", self.changed),
        ):
            if rows:
                more = f" (+{len(rows) - limit} more)" if len(rows) > limit else ""
                parts.append(f"{len(rows)} {label}: {', '.join(rows[:limit])}{more}")
        return "; ".join(parts) if len(parts) > 1 else parts[0] + ": no differences"


def locate_differences(reference: PgTarget, current: PgTarget, table: str) -> RowDifferences:
    """Compare ``table`` (``schema.name``) row by row between two databases.

    Args:
        reference: the database as it should be.
        current: the database to check.
        table: ``schema.name``.

    """
    started = time.monotonic()
    schema, _, name = table.rpartition(".")
    # Both sides at once: two servers, or two backends of one (the waits are in libpq,
    # which lets other threads run).
    with ThreadPoolExecutor(max_workers=2) as pool:
        ref, cur = _open_both(pool, reference, current)
        with ref, cur:
            unpopulated = [
                side
                for side, conn in (("reference", ref), ("current", cur))
                if not _populated(conn, table)
            ]
            if unpopulated:
                # A materialized view never populated has no rows to compare.
                return RowDifferences(
                    table=table,
                    method=f"not populated in the {' and the '.join(unpopulated)} database",
                    missing=(),
                    extra=(),
                    changed=(),
                    rows_read=0,
                    full_passes=0,
                    seconds=time.monotonic() - started,
                )
            key = primary_key(ref, schema, name)
            if not key:
                return _multiset(ref, cur, schema, name, started)
            sides = (_Side(ref, schema, name, key), _Side(cur, schema, name, key))
            bucketing = None
            if _estimated_rows(ref, schema, name) > SMALL:
                bucketing = _bucketing(ref, schema, name, key[0])
            if bucketing is None:  # few rows (or no sample to bucket by): read them all
                found = _compare_rows(sides, None)
            else:
                found = _narrow(pool, sides, bucketing)
    return RowDifferences(
        table=table,
        method=f"by primary key ({', '.join(key)})",
        missing=tuple(sorted(found.missing)),
        extra=tuple(sorted(found.extra)),
        changed=tuple(sorted(found.changed)),
        rows_read=found.read,
        full_passes=1,
        seconds=time.monotonic() - started,
    )


def _open_both(
    pool: ThreadPoolExecutor, reference: PgTarget, current: PgTarget
) -> tuple[Connection[Any], Connection[Any]]:
    """Both connections, opened at once; neither is left open when the other fails."""
    futures = [pool.submit(_open, target) for target in (reference, current)]
    wait(futures)
    for future in futures:
        error = future.exception()
        if error is not None:
            for other in futures:
                if other.exception() is None:
                    other.result().close()
            raise error
    return futures[0].result(), futures[1].result()


def _open(target: PgTarget) -> Connection[Any]:
    conn = connect(target)
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    fix_settings(conn)
    # The planner cannot know how few buckets there are (it takes every key for a group):
    # it would sort the whole table, row data included, on one core. A hash aggregate per
    # parallel worker is what a few thousand groups want.
    conn.execute(
        "SELECT set_config('enable_sort', 'off', true), "
        "set_config('parallel_tuple_cost', '0', true)"
    )
    return conn


class _Side:
    """One database's connection, with the table's row hash and key text built once."""

    def __init__(self, conn: Connection[Any], schema: str, name: str, key: tuple[str, ...]):
        self.conn = conn
        self.table = sql.Identifier(schema, name)
        self.hash = row_hash(conn, schema, name)
        self.key = sql.SQL(" || ', ' || ").join(
            sql.SQL("coalesce({}::text, 'NULL')").format(sql.Identifier("t", k)) for k in key
        )

    def buckets(
        self, bucketing: _Bucketing, where: tuple[sql.Composed, list[Any]] | None
    ) -> dict[int, tuple[int, str]]:
        """``bucket -> (rows, digest)`` of the rows ``where`` selects (all when None)."""
        expr, params = bucketing.expr()
        condition, more = where if where is not None else (sql.SQL("true"), [])
        query = sql.SQL(
            "SELECT {b}, count(*), sum({h})::text FROM ONLY {t} t WHERE {w} GROUP BY 1"
        ).format(b=expr, h=self.hash, t=self.table, w=condition)
        rows = self.conn.execute(query, [*params, *more]).fetchall()
        return {int(b): (int(n), str(d)) for b, n, d in rows}

    def rows(self, where: tuple[sql.Composed, list[Any]] | None) -> dict[str, int]:
        """``key text -> row hash`` of the rows ``where`` selects (all when None)."""
        query = sql.SQL("SELECT {k}, {h} FROM ONLY {t} t{w}").format(
            k=self.key,
            h=self.hash,
            t=self.table,
            w=sql.SQL(" WHERE {}").format(where[0]) if where else sql.SQL(""),
        )
        result = self.conn.execute(query, where[1] if where else None).fetchall()
        return {str(k): int(h) for k, h in result}


@dataclass(frozen=True)
class _Found:
    missing: list[str]
    extra: list[str]
    changed: list[str]
    read: int


def _compare_rows(
    sides: tuple[_Side, _Side], where: tuple[sql.Composed, list[Any]] | None
) -> _Found:
    a, b = (side.rows(where) for side in sides)
    return _Found(
        missing=sorted(set(a) - set(b)),
        extra=sorted(set(b) - set(a)),
        changed=sorted(k for k in set(a) & set(b) if a[k] != b[k]),
        read=len(a) + len(b),
    )


def _narrow(pool: ThreadPoolExecutor, sides: tuple[_Side, _Side], bucketing: _Bucketing) -> _Found:
    """Bucket both sides, then narrow the differing buckets until few rows are left.

    The first round is the one full pass over each side; each later round reads only the
    differing buckets of the round before (key range scans) and splits them again, until
    they hold few rows: those are then read row by row.
    """
    where: tuple[sql.Composed, list[Any]] | None = None
    while True:
        a, b = pool.map(_Side.buckets, sides, (bucketing, bucketing), (where, where))
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if not differing:
            return _Found([], [], [], 0)
        where = bucketing.where_any(differing)
        rows = sum(max(a.get(k, (0, ""))[0], b.get(k, (0, ""))[0]) for k in differing)
        finer = bucketing.finer()
        if rows <= NARROW or finer is None:
            return _compare_rows(sides, where)
        bucketing = finer


def _populated(conn: Connection[Any], table: str) -> bool:
    schema, _, name = table.rpartition(".")
    row = conn.execute(
        "SELECT c.relispopulated FROM pg_class c WHERE c.oid = %s::regclass",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchone()
    return bool(row[0]) if row else True


def _estimated_rows(conn: Connection[Any], schema: str, name: str) -> int:
    """The planner's row estimate; an exact count when the table was never analysed."""
    table = sql.Identifier(schema, name)
    row = conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table.as_string(conn),)
    ).fetchone()
    if row and row[0] is not None and float(row[0]) >= 0:
        return int(row[0])
    # ONLY: a classic inheritance parent's own rows, as its digest counts them.
    counted = conn.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(table)).fetchone()
    return int(counted[0]) if counted else 0


@dataclass(frozen=True)
class _Bucketing:
    """How key values map to buckets: equal-width integer ranges, or sampled boundaries.

    Integer buckets are ``key / width`` (integer division, which truncates toward zero:
    bucket 0 spans one width on each side of zero); the width spreads the reference's keys
    over about :data:`BUCKETS` buckets, and keys outside its range land in buckets of their
    own.
    """

    column: str
    width: int = 0
    bounds: tuple[Any, ...] = ()

    def expr(self) -> tuple[sql.Composed, list[Any]]:
        col = sql.Identifier("t", self.column)
        if self.width:
            # One division per row; an int8 divisor widens int2/int4 keys (no overflow).
            return sql.SQL("{c} / %s::int8").format(c=col), [self.width]
        return sql.SQL("width_bucket({}, %s)").format(col), [list(self.bounds)]

    def where(self, bucket: int) -> tuple[sql.Composed, list[Any]]:
        col = sql.Identifier("t", self.column)
        if self.width:
            # Edges past the bigint range are sent as numeric: the comparisons still hold.
            w = self.width
            if bucket > 0:
                lo, hi = bucket * w, (bucket + 1) * w
                return sql.SQL("({c} >= %s AND {c} < %s)").format(c=col), [lo, hi]
            if bucket == 0:
                return sql.SQL("({c} > %s AND {c} < %s)").format(c=col), [-w, w]
            lo, hi = (bucket - 1) * w, bucket * w
            return sql.SQL("({c} > %s AND {c} <= %s)").format(c=col), [lo, hi]
        if bucket == 0:
            return sql.SQL("{} < %s").format(col), [self.bounds[0]]
        if bucket >= len(self.bounds):
            return sql.SQL("{} >= %s").format(col), [self.bounds[-1]]
        return (
            sql.SQL("({c} >= %s AND {c} < %s)").format(c=col),
            [self.bounds[bucket - 1], self.bounds[bucket]],
        )

    def where_any(self, buckets: list[int]) -> tuple[sql.Composed, list[Any]]:
        """A condition selecting the rows of any of ``buckets``."""
        parts = [self.where(b) for b in buckets]
        return (
            sql.SQL("({})").format(sql.SQL(" OR ").join(p for p, _ in parts)),
            [v for _, params in parts for v in params],
        )

    def finer(self) -> _Bucketing | None:
        """Integer buckets :data:`SPLIT` times narrower (None: sampled, or one key wide)."""
        if not self.width or self.width == 1:
            return None
        return _Bucketing(self.column, width=max(1, -(-self.width // SPLIT)))


def _bucketing(conn: Connection[Any], schema: str, name: str, column: str) -> _Bucketing | None:
    """Integer keys: equal-width ranges between min and max (two index lookups).

    Other keys: boundaries at the quantiles of a page sample (``TABLESAMPLE SYSTEM`` reads
    whole random pages, about two per bucket): keys in insertion order and random keys (a
    uuid, a hash) alike spread over the buckets.
    """
    table = sql.Identifier(schema, name)
    col = sql.Identifier(column)
    typname = conn.execute(
        "SELECT atttypid::regtype::text FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attname = %s",
        (table.as_string(conn), column),
    ).fetchone()
    if typname and typname[0] in ("smallint", "integer", "bigint"):
        row = conn.execute(
            sql.SQL("SELECT min({c}), max({c}) FROM ONLY {t}").format(c=col, t=table)
        ).fetchone()
        if row and row[0] is not None:
            low, high = int(row[0]), int(row[1])
            return _Bucketing(column, width=max(1, -(-(high - low + 1) // BUCKETS)))
    pages = conn.execute(
        "SELECT greatest(relpages, 1) FROM pg_class WHERE oid = %s::regclass",
        (table.as_string(conn),),
    ).fetchone()
    percent = min(100.0, 100.0 * 2 * BUCKETS / float(pages[0] if pages else 1))
    # Quantiles of the sampled keys, computed in the server: only the boundaries travel.
    fractions = [i / BUCKETS for i in range(1, BUCKETS)]
    row = conn.execute(
        sql.SQL(
            "SELECT percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY {c}) "
            "FROM ONLY {t} TABLESAMPLE SYSTEM (%s)"
        ).format(c=col, t=table),
        (fractions, percent),
    ).fetchone()
    found = [v for v in (row[0] if row and row[0] else []) if v is not None]
    bounds = tuple(sorted(set(found)))
    return _Bucketing(column, bounds=bounds) if bounds else None


def _multiset(
    ref: Connection[Any], cur: Connection[Any], schema: str, name: str, started: float
) -> RowDifferences:
    counts = []
    for conn in (ref, cur):
        query = sql.SQL(
            "SELECT h, count(*), min(x) FROM (SELECT {h} AS h, t::text AS x "
            "FROM ONLY {t} t) s GROUP BY h"
        ).format(h=row_hash(conn, schema, name), t=sql.Identifier(schema, name))
        counts.append({int(h): (int(n), str(x)) for h, n, x in conn.execute(query).fetchall()})
    a, b = counts
    missing = [a[h][1] for h in sorted(a) for _ in range(a[h][0] - b.get(h, (0, ""))[0])]
    extra = [b[h][1] for h in sorted(b) for _ in range(b[h][0] - a.get(h, (0, ""))[0])]
    return RowDifferences(
        table=f"{schema}.{name}",
        method="no primary key: rows compared as a multiset",
        missing=tuple(missing),
        extra=tuple(extra),
        changed=(),
        rows_read=sum(n for n, _ in a.values()) + sum(n for n, _ in b.values()),
        full_passes=1,
        seconds=time.monotonic() - started,
    )
