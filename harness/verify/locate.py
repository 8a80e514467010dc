"""Find the rows behind a differing table digest, without a second full hashing pass.

With a primary key, both sides are bucketed by key ranges (:mod:`harness.verify.buckets`)
and aggregated per bucket in one grouped pass each, both sides at once; fingerprints taken
with their buckets (``buckets=True``) already hold that pass, and then no table is read in
full again. The buckets whose count or digest differ are narrowed with the same hash
(integer keys: split again and aggregated over their key ranges only, until few rows are
left), then read row by row (primary-key range scans) and compared key by key.
Without a primary key, rows are compared as a multiset of row hashes, and the differing
rows are shown by content. Like the digests, every read is of the table's own rows
(``ONLY``), never of its inheritance children.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql

from harness.config import PgTarget
from harness.pg.sql import connect
from harness.verify.buckets import (
    SMALL,
    Bucketing,
    Digests,
    bucket_digests,
    choose_bucketing,
    plan_for_grouping,
)
from harness.verify.data import TableDigest, primary_key, row_hash
from harness.verify.session import fix_settings

__all__ = ["SMALL", "RowDifferences", "locate_differences"]

NARROW = 2000  # differing buckets holding more rows than this are split again


@dataclass(frozen=True)
class RowDifferences:
    """Rows that differ between a reference table and the current one."""

    table: str
    method: str
    missing: tuple[str, ...]  # keys (or row text) in the reference, absent now
    extra: tuple[str, ...]  # present now, absent in the reference
    changed: tuple[str, ...]  # same key, different content
    rows_read: int  # rows hashed on both sides to find them (after the grouped pass)
    full_passes: int  # full passes over the tables here (0: both recorded buckets used)
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


def locate_differences(
    reference: PgTarget,
    current: PgTarget,
    table: str,
    *,
    recorded: tuple[TableDigest | None, TableDigest | None] = (None, None),
) -> RowDifferences:
    """Compare ``table`` (``schema.name``) row by row between two databases.

    Args:
        reference: the database as it should be.
        current: the database to check.
        table: ``schema.name``.
        recorded: the table's digests in fingerprints of ``reference`` and ``current``
            taken with their buckets: a side whose buckets are there is not read in full
            again. They must describe the databases as they still are.

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
            known = _recorded_buckets(recorded, key)
            bucketing = known[0] if known else None
            if bucketing is None and _estimated_rows(ref, schema, name) > SMALL:
                bucketing = choose_bucketing(ref, schema, name, key[0])
            if bucketing is None:  # few rows (or no sample to bucket by): read them all
                found, passes = _compare_rows(sides, None), 1
            else:
                first = known[1] if known else (None, None)
                found = _narrow(pool, sides, bucketing, first)
                passes = sum(digests is None for digests in first)
    return RowDifferences(
        table=table,
        method=f"by primary key ({', '.join(key)})",
        missing=tuple(sorted(found.missing)),
        extra=tuple(sorted(found.extra)),
        changed=tuple(sorted(found.changed)),
        rows_read=found.read,
        full_passes=passes,
        seconds=time.monotonic() - started,
    )


def _recorded_buckets(
    recorded: tuple[TableDigest | None, TableDigest | None], key: tuple[str, ...]
) -> tuple[Bucketing, tuple[Digests | None, Digests | None]] | None:
    """The reference's recorded bucketing, and each side's digests recorded with it.

    The current side's digests count only when they were bucketed exactly as the
    reference's (its fingerprint taken ``like`` the reference's; bucketed on its own, its
    integer widths follow its own key range, its sampled boundaries its own sample).
    """
    reference, current = recorded
    if reference is None or reference.buckets is None:
        return None
    if reference.key != key:
        return None  # recorded for another key (bucketed by its first column): bucket anew
    bucketing = reference.buckets.bucketing
    mine = current.buckets if current is not None else None
    digests = mine.digests if mine is not None and mine.bucketing == bucketing else None
    return bucketing, (reference.buckets.digests, digests)


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
    plan_for_grouping(conn)
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
        self, bucketing: Bucketing, where: tuple[sql.Composed, list[Any]] | None
    ) -> Digests:
        """``bucket -> (rows, digest)`` of the rows ``where`` selects (all when None)."""
        return bucket_digests(self.conn, self.table, self.hash, bucketing, where)

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


def _narrow(
    pool: ThreadPoolExecutor,
    sides: tuple[_Side, _Side],
    bucketing: Bucketing,
    first: tuple[Digests | None, Digests | None],
) -> _Found:
    """Bucket both sides, then narrow the differing buckets until few rows are left.

    The first round is the one full pass over each side (skipped for a side whose digests
    ``first`` holds); each later round reads only the differing buckets of the round
    before (key range scans) and splits them again, until they hold few rows: those are
    then read row by row.
    """
    where: tuple[sql.Composed, list[Any]] | None = None
    known = first
    while True:
        missing = [i for i, digests in enumerate(known) if digests is None]
        # Both sides at once (only those not recorded).
        reading = functools.partial(_Side.buckets, bucketing=bucketing, where=where)
        found = pool.map(reading, [sides[i] for i in missing])
        read = dict(zip(missing, found, strict=True))
        a = known[0] if known[0] is not None else read[0]
        b = known[1] if known[1] is not None else read[1]
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if not differing:
            return _Found([], [], [], 0)
        where = bucketing.where_any(differing)
        rows = sum(max(a.get(k, (0, ""))[0], b.get(k, (0, ""))[0]) for k in differing)
        finer = bucketing.finer()
        if rows <= NARROW or finer is None:
            return _compare_rows(sides, where)
        bucketing, known = finer, (None, None)


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
