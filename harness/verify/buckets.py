"""Key-range buckets of a table: which rows differ, narrowed without a second full pass.

A table with a primary key is cut into about :data:`BUCKETS` ranges of its first key column
(equal widths between the smallest and largest integer key, or boundaries at the quantiles
of a page sample for other keys), and each range gets a row count and the sum of its rows'
hashes, in one grouped pass. Two databases compared bucket by bucket show where their rows
differ; the differing ranges are then split again and read on their own (key range scans).
The fingerprint can take the same grouped pass instead of its plain one
(:func:`harness.verify.data.read_data_fingerprint` with ``buckets``): a locate that follows
then starts from those digests instead of reading both tables again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql

SMALL = 5000  # tables up to this many rows are compared row by row directly
BUCKETS = 4096  # key ranges of the one full pass over each side
SPLIT = 64  # differing buckets holding many rows are split into this many narrower ranges

Digests = dict[int, tuple[int, str]]  # bucket -> (rows, sum of row hashes as text)


def plan_for_grouping(conn: Connection[Any]) -> None:
    """Plan grouped passes as a hash aggregate per parallel worker, for this transaction.

    The planner cannot know how few buckets there are (it takes every key for a group): it
    would sort the whole table, row data included, on one core.
    """
    conn.execute(
        "SELECT set_config('enable_sort', 'off', true), "
        "set_config('parallel_tuple_cost', '0', true)"
    )


@dataclass(frozen=True)
class Bucketing:
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
        """The bucket number of a row of the table called ``t``, and its parameters."""
        col = sql.Identifier("t", self.column)
        if self.width:
            # One division per row; an int8 divisor widens int2/int4 keys (no overflow).
            return sql.SQL("{c} / %s::int8").format(c=col), [self.width]
        return sql.SQL("width_bucket({}, %s)").format(col), [list(self.bounds)]

    def where(self, bucket: int) -> tuple[sql.Composed, list[Any]]:
        """A condition selecting the rows of ``bucket`` (key range scans), and parameters."""
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

    def finer(self) -> Bucketing | None:
        """Integer buckets :data:`SPLIT` times narrower (None: sampled, or one key wide)."""
        if not self.width or self.width == 1:
            return None
        return Bucketing(self.column, width=max(1, -(-self.width // SPLIT)))


def choose_bucketing(
    conn: Connection[Any], schema: str, name: str, column: str
) -> Bucketing | None:
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
            return Bucketing(column, width=max(1, -(-(high - low + 1) // BUCKETS)))
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
    return Bucketing(column, bounds=bounds) if bounds else None


@dataclass(frozen=True)
class TableBuckets:
    """A table's rows per key range: how they were bucketed, and each bucket's digest."""

    bucketing: Bucketing
    digests: Digests


def bucket_digests(
    conn: Connection[Any],
    table: sql.Identifier,
    row_hash: sql.Composable,
    bucketing: Bucketing,
    where: tuple[sql.Composed, list[Any]] | None = None,
) -> Digests:
    """``bucket -> (rows, digest)`` of the rows of ``table`` that ``where`` selects (all).

    The table is called ``t`` in the query (as ``row_hash`` expects); only its own rows are
    read (``ONLY``), as its digest reads them.
    """
    expr, params = bucketing.expr()
    condition, more = where if where is not None else (sql.SQL("true"), [])
    query = sql.SQL(
        "SELECT {b}, count(*), sum({h})::text FROM ONLY {t} t WHERE {w} GROUP BY 1"
    ).format(b=expr, h=row_hash, t=table, w=condition)
    rows = conn.execute(query, [*params, *more]).fetchall()
    return {int(b): (int(n), str(d)) for b, n, d in rows}
