"""Find the rows behind a differing table digest, without a second full hashing pass.

With a primary key, both sides are bucketed by key ranges taken from a small sample of the
reference (``TABLESAMPLE SYSTEM``) and aggregated per bucket in one grouped pass each; only
the buckets whose count or digest differ are then read row by row (a primary-key range scan)
and compared key by key. Without a primary key, rows are compared as a multiset of row
hashes, and the differing rows are shown by content. Like the digests, every read is of the
table's own rows (``ONLY``), never of its inheritance children.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql

from harness.config import PgTarget
from harness.pg.sql import connect
from harness.verify.data import primary_key, row_hash
from harness.verify.session import fix_settings

SMALL = 5000  # tables up to this many rows are compared row by row directly
BUCKETS = 1024


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
    """Compare ``table`` (``schema.name``) row by row between two databases."""
    started = time.monotonic()
    schema, _, name = table.rpartition(".")
    with connect(reference) as ref, connect(current) as cur:
        for conn in (ref, cur):
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            fix_settings(conn)
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
        rows = _own_rows(ref, schema, name)
        if rows <= SMALL:
            missing, extra, changed, read = _compare_rows(ref, cur, schema, name, key, None)
            passes = 1
        else:
            buckets = _bucketing(ref, schema, name, key[0])
            # One grouped pass per side, both sides at once (two servers, or two backends).
            with ThreadPoolExecutor(max_workers=2) as pool:
                sides = [pool.submit(_buckets, conn, schema, name, buckets) for conn in (ref, cur)]
                a, b = (side.result() for side in sides)
            differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            missing, extra, changed, read = [], [], [], 0
            for bucket in differing:
                m, e, c, n = _compare_rows(ref, cur, schema, name, key, buckets.where(bucket))
                missing += m
                extra += e
                changed += c
                read += n
            passes = 1
    return RowDifferences(
        table=table,
        method=f"by primary key ({', '.join(key)})",
        missing=tuple(sorted(missing)),
        extra=tuple(sorted(extra)),
        changed=tuple(sorted(changed)),
        rows_read=read,
        full_passes=passes,
        seconds=time.monotonic() - started,
    )


def _populated(conn: Connection[Any], table: str) -> bool:
    schema, _, name = table.rpartition(".")
    row = conn.execute(
        "SELECT c.relispopulated FROM pg_class c WHERE c.oid = %s::regclass",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchone()
    return bool(row[0]) if row else True


def _own_rows(conn: Connection[Any], schema: str, name: str) -> int:
    # ONLY: a classic inheritance parent's own rows, as its digest counts them.
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, name))
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class _Bucketing:
    """How key values map to buckets: equal-width integer ranges, or sampled boundaries."""

    column: str
    low: int = 0
    width: int = 0
    bounds: tuple[Any, ...] = ()

    def expr(self) -> tuple[sql.Composed, list[Any]]:
        col = sql.Identifier("t", self.column)
        if self.width:
            return (
                sql.SQL("CASE WHEN {c} < %s THEN -1 ELSE least(({c} - %s) / %s, %s) END").format(
                    c=col
                ),
                [self.low, self.low, self.width, BUCKETS],
            )
        return sql.SQL("width_bucket({}, %s)").format(col), [list(self.bounds)]

    def where(self, bucket: int) -> tuple[sql.Composed, list[Any]]:
        col = sql.Identifier("t", self.column)
        if self.width:
            start = self.low + bucket * self.width
            if bucket < 0:
                return sql.SQL("{} < %s").format(col), [self.low]
            if bucket >= BUCKETS:
                return sql.SQL("{} >= %s").format(col), [start]
            return sql.SQL("{c} >= %s AND {c} < %s").format(c=col), [start, start + self.width]
        if bucket == 0:
            return sql.SQL("{} < %s").format(col), [self.bounds[0]]
        if bucket >= len(self.bounds):
            return sql.SQL("{} >= %s").format(col), [self.bounds[-1]]
        return (
            sql.SQL("{c} >= %s AND {c} < %s").format(c=col),
            [self.bounds[bucket - 1], self.bounds[bucket]],
        )


def _bucketing(conn: Connection[Any], schema: str, name: str, column: str) -> _Bucketing:
    """Integer keys: equal-width ranges between min and max (two index lookups).

    Other keys: boundaries from a page sample. ``TABLESAMPLE SYSTEM`` reads whole random
    pages; one boundary per sampled page (its smallest key) spreads the boundaries like the
    pages, where every sampled row would bunch them into the few pages read.
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
            return _Bucketing(column, low=low, width=max(1, -(-(high - low + 1) // BUCKETS)))
    pages = conn.execute(
        "SELECT greatest(relpages, 1) FROM pg_class WHERE oid = %s::regclass",
        (table.as_string(conn),),
    ).fetchone()
    percent = min(100.0, 100.0 * 2 * BUCKETS / float(pages[0] if pages else 1))
    sample = [
        r[0]
        for r in conn.execute(
            sql.SQL(
                "SELECT min({c}) FROM ONLY {t} TABLESAMPLE SYSTEM (%s) "
                "GROUP BY (ctid::text::point)[0] ORDER BY 1"
            ).format(c=col, t=table),
            (percent,),
        ).fetchall()
    ]
    step = max(1, len(sample) // BUCKETS)
    return _Bucketing(column, bounds=tuple(sample[step::step]) or tuple(sample[:1]))


def _buckets(
    conn: Connection[Any], schema: str, name: str, bucketing: _Bucketing
) -> dict[int, tuple[int, str]]:
    expr, params = bucketing.expr()
    query = sql.SQL("SELECT {b}, count(*), sum({h})::text FROM ONLY {t} t GROUP BY 1").format(
        b=expr, h=row_hash(conn, schema, name), t=sql.Identifier(schema, name)
    )
    return {int(b): (int(n), str(s)) for b, n, s in conn.execute(query, params).fetchall()}


def _compare_rows(
    ref: Connection[Any],
    cur: Connection[Any],
    schema: str,
    name: str,
    key: tuple[str, ...],
    where: tuple[sql.Composed, list[Any]] | None,
) -> tuple[list[str], list[str], list[str], int]:
    sides = []
    for conn in (ref, cur):
        keytext = sql.SQL(" || ', ' || ").join(
            sql.SQL("coalesce({}::text, 'NULL')").format(sql.Identifier("t", k)) for k in key
        )
        query = sql.SQL("SELECT {k}, {h} FROM ONLY {t} t{w}").format(
            k=keytext,
            h=row_hash(conn, schema, name),
            t=sql.Identifier(schema, name),
            w=sql.SQL(" WHERE {}").format(where[0]) if where else sql.SQL(""),
        )
        sides.append(
            {str(k): int(h) for k, h in conn.execute(query, where[1] if where else None).fetchall()}
        )
    a, b = sides
    missing = sorted(set(a) - set(b))
    extra = sorted(set(b) - set(a))
    changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    return missing, extra, changed, len(a) + len(b)


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
