"""Data fingerprint: per table, the exact row count and an order-independent content hash.

Computed inside PostgreSQL in one sequential pass per table: every row is hashed to 64 bits
and the table's digest is the sum of its rows' hashes (so row order, page layout and the
server do not matter). A row's hash chains its columns in column order, each column hashed
by its type's own hash function where that is a pure function of the value (integers,
text, uuid, numeric, floats, jsonb, dates and times, inet, ...), and by the hash of its
text form, with the session settings fixed (:mod:`harness.verify.session`), for everything
else (enums, whose binary hash is an OID; json; arrays; composites; intervals, whose hash
equates '1 day' and '24 hours'; bytea; geometric types and xml, which have no hash or
equality at all ...). Hash functions of these types are stable across major versions (hash
partitioning depends on it).

The chain is non-linear, so that values swapped between rows change the sum. Row hash
version 2 (:data:`ROW_HASH`) seeds each column's hash with the chain so far: one function
call per column, where version 1 hashed each column and then mixed it into the chain (two
calls). A row with a NULL breaks a seeded chain (the hash functions are strict), so such a
row, and only such a row, is hashed by the NULL-safe two-call chain instead (a table of more
than :data:`SEEDED_UP_TO` columns uses only that chain: planning both costs more than the
seeded one saves). Fingerprints
record their version; :func:`read_data_fingerprint` computes either, so that a reference
taken by an older version of the harness is still compared digest for digest.

Which relations hold data of their own, as pg_dump sees it: tables (logged or unlogged: both
are dumped) and materialized views, each read with ``ONLY`` so that a classic inheritance
parent does not count its children's rows again. Partitioned parents hold no rows (their
leaves do), foreign tables' rows live on another server, and temporary tables belong to a
session, not to the database: none of these is read. A materialized view that was never
populated cannot be read either; its state is recorded instead, and compared. Large objects
are counted and hashed by content, in chunks, apart from the tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import Connection, errors, sql

from harness.config import PgTarget
from harness.verify.buckets import (
    SMALL,
    Bucketing,
    TableBuckets,
    bucket_digests,
    choose_bucketing,
    plan_for_grouping,
)
from harness.verify.rowhash import (
    COLUMNS_OF,
    ROW_HASH,
    ROW_HASHES,
    SEEDED_UP_TO,
    TYPNAME,
    Column,
    hash_expression,
    row_hash,
)
from harness.verify.session import in_snapshot

# Row hashes live in their own module; these names are part of this one's interface too.
__all__ = [
    "NOT_POPULATED",
    "ROW_HASH",
    "ROW_HASHES",
    "SEEDED_UP_TO",
    "Column",
    "DataFingerprint",
    "LargeObjectDigest",
    "TableDigest",
    "data_fingerprint",
    "data_relations",
    "hash_expression",
    "large_objects_digest",
    "primary_key",
    "read_data_fingerprint",
    "row_hash",
    "table_digest",
]

NOT_POPULATED = "not populated"
LO_CHUNK = 1 << 20  # large objects are read and hashed a mebibyte at a time
_BATCH = 50  # tables digested by one query

# Relations with rows of their own in a dump: see the module docstring.
_DATA_FILTER = """
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
"""
_DATA_RELATIONS = f"""
SELECT n.nspname, c.relname, c.relispopulated FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace {_DATA_FILTER} ORDER BY 1, 2
"""  # noqa: S608 - built from this module's constants only

_KEY_OF = """
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
  AND a.attnum = ANY(i.indkey::int2[])
WHERE i.indrelid = {rel} AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)
"""
# Every data relation with its key and its columns: one round trip, not three per table.
_RELATION_DETAILS = f"""
SELECT n.nspname, c.relname, c.relispopulated,
  ARRAY(SELECT a.attname::text {_KEY_OF.format(rel="c.oid")}),
  ARRAY(SELECT ARRAY[a.attname::text, {TYPNAME}] {COLUMNS_OF.format(rel="c.oid")}),
  c.reltuples
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace {_DATA_FILTER} ORDER BY 1, 2
"""  # noqa: S608 - built from this module's constants only

# Per large object, the SHA-256 of each chunk in order (a hole in a sparse object reads as
# zeros, as pg_dump writes it back); the object's hash covers its oid, which pg_dump keeps.
_LARGE_OBJECTS = """
WITH RECURSIVE chunk (lo, off, len, h) AS (
    SELECT m.oid, 0::int8, length(x.b), encode(sha256(x.b), 'hex')
    FROM pg_largeobject_metadata m,
         LATERAL (SELECT lo_get(m.oid, 0, %(n)s) AS b OFFSET 0) x
  UNION ALL
    SELECT c.lo, c.off + %(n)s, length(x.b), encode(sha256(x.b), 'hex')
    FROM chunk c, LATERAL (SELECT lo_get(c.lo, c.off + %(n)s, %(n)s) AS b OFFSET 0) x
    WHERE c.len = %(n)s
)
SELECT count(*), coalesce(sum(h), 0)::text FROM (
    SELECT hashtextextended(lo::text || ':' || string_agg(h, '' ORDER BY off), 0) AS h
    FROM chunk GROUP BY lo
) objects
"""

# Errors that make one relation unreadable without ending the fingerprint: a damaged page,
# a missing privilege, a value too large to hash in memory.
_UNREADABLE = (psycopg.InternalError, errors.InsufficientPrivilege, errors.ProgramLimitExceeded)


@dataclass(frozen=True)
class TableDigest:
    """Row count and content digest of one table.

    ``rows`` is -1 (and ``digest`` says why) when the table could not be read; a materialized
    view never populated has ``populated`` false, no rows and no digest.
    """

    schema: str
    name: str
    rows: int
    digest: str
    key: tuple[str, ...]  # primary-key columns, empty when the table has none
    populated: bool = True
    # Per key range, when the fingerprint was taken with buckets (held in memory only: a
    # fingerprint document does not carry them, and equal digests do not depend on them).
    buckets: TableBuckets | None = field(default=None, compare=False, repr=False)

    @property
    def qualified(self) -> str:
        """``schema.name``."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class LargeObjectDigest:
    """How many large objects there are, and the sum of their content hashes."""

    count: int
    digest: str  # "unreadable: ..." when their content could not be read


@dataclass(frozen=True)
class DataFingerprint:
    """Digests of every user table and materialized view, and of the large objects."""

    tables: tuple[TableDigest, ...]
    large_objects: LargeObjectDigest | None = None  # None: not taken (an older fingerprint)
    row_hash: int = ROW_HASH  # the row hash version of every digest (1 in older documents)

    def get(self, qualified: str) -> TableDigest | None:
        """The digest of ``schema.name``, if present."""
        return next((t for t in self.tables if t.qualified == qualified), None)


def primary_key(conn: Connection[Any], schema: str, name: str) -> tuple[str, ...]:
    """The primary-key columns of ``schema.name`` in key order."""
    rows = conn.execute(
        f"SELECT a.attname::text {_KEY_OF.format(rel='%s::regclass')}",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def table_digest(
    conn: Connection[Any],
    schema: str,
    name: str,
    *,
    populated: bool = True,
    version: int = ROW_HASH,
) -> TableDigest:
    """Count and digest one table in one pass (its own rows, not its children's).

    Args:
        conn: an open connection, in the caller's snapshot.
        schema: the table's schema.
        name: the table's name.
        populated: false for a materialized view never populated: it is not read.
        version: the row hash version (:data:`ROW_HASHES`).

    """
    key = primary_key(conn, schema, name)
    h = row_hash(conn, schema, name, version=version) if populated else None
    return _digest(conn, schema, name, key, h)


def _digest(
    conn: Connection[Any],
    schema: str,
    name: str,
    key: tuple[str, ...],
    h: sql.Composed | None,
) -> TableDigest:
    if h is None:
        return TableDigest(schema, name, rows=0, digest=NOT_POPULATED, key=key, populated=False)
    query = sql.SQL("SELECT count(*), coalesce(sum({h}), 0)::text FROM ONLY {t} t").format(
        h=h, t=sql.Identifier(schema, name)
    )
    rows, digest = _guarded(conn, query)
    return TableDigest(schema=schema, name=name, rows=rows, digest=digest, key=key)


def large_objects_digest(conn: Connection[Any]) -> LargeObjectDigest:
    """Count and hash the content of every large object of the database."""
    count, digest = _guarded(conn, sql.SQL(_LARGE_OBJECTS), {"n": LO_CHUNK})
    if count < 0:  # unreadable: still say how many there are
        row = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
        count = int(row[0]) if row else 0
    return LargeObjectDigest(count=count, digest=digest)


def _guarded(
    conn: Connection[Any], query: sql.SQL | sql.Composed, params: dict[str, Any] | None = None
) -> tuple[int, str]:
    """``(count, digest)`` from ``query``; ``(-1, "unreadable: why")`` when it cannot be read."""
    try:
        if params is None:
            # The savepoint travels with the query: one round trip (the server takes several
            # statements at once only without parameters, in the simple protocol).
            cur = conn.execute(sql.SQL("SAVEPOINT drill_digest; {}").format(query))
            cur.nextset()
        else:
            conn.execute("SAVEPOINT drill_digest")
            cur = conn.execute(query, params)
        row = cur.fetchone()
        conn.execute("RELEASE SAVEPOINT drill_digest")
    except _UNREADABLE as exc:
        # Say so, and go on with the other tables; the comparison fails this one.
        conn.execute("ROLLBACK TO SAVEPOINT drill_digest")
        return -1, "unreadable: " + str(exc).splitlines()[0]
    return (int(row[0]), str(row[1])) if row else (0, "0")


def data_fingerprint(
    target: PgTarget, *, version: int = ROW_HASH, buckets: bool = False
) -> DataFingerprint:
    """Digest every user table of ``target``'s database, in one snapshot.

    Args:
        target: the database.
        version: the row hash version (:data:`ROW_HASHES`).
        buckets: also keep each large keyed table's digests per key range (see
            :func:`read_data_fingerprint`).

    """
    plan: Mapping[str, Bucketing] | None = {} if buckets else None
    return in_snapshot(
        target, lambda conn: read_data_fingerprint(conn, version=version, buckets=plan)
    )


def data_relations(conn: Connection[Any]) -> list[tuple[str, str, bool]]:
    """``(schema, name, populated)`` of every relation whose rows a dump holds."""
    return [(str(s), str(n), bool(p)) for s, n, p in conn.execute(_DATA_RELATIONS).fetchall()]


def read_data_fingerprint(
    conn: Connection[Any],
    *,
    version: int = ROW_HASH,
    buckets: Mapping[str, Bucketing] | None = None,
) -> DataFingerprint:
    """Digest every user table on an open connection (settings fixed by the caller).

    Tables are digested a batch per query (one round trip and one plan for many small
    tables); should one of them be unreadable, that batch is digested table by table, so
    that the unreadable one is named and the others are still read.

    Args:
        conn: an open connection, in the caller's snapshot.
        version: the row hash version (:data:`ROW_HASHES`).
        buckets: when given, digest each keyed table of more than :data:`SMALL` rows per
            key range instead (a grouped pass, dearer than the plain one; the table's digest
            is the same), so that a locate of its differing rows needs no second full pass.
            It maps tables (``schema.name``) to the bucketing to use (another fingerprint's,
            so that the two compare bucket by bucket); others get their own.

    """
    planned: list[tuple[str, str, tuple[str, ...], sql.Composed | None]] = []
    bucketed: dict[int, TableDigest] = {}  # position in the list -> its digest
    for schema, name, populated, key, columns, estimate in conn.execute(
        _RELATION_DETAILS
    ).fetchall():
        h = None
        if populated:
            h = hash_expression([(str(c), t) for c, t in columns], version=version)
        table = (str(schema), str(name), tuple(map(str, key)), h)
        if buckets is not None and h is not None and key and float(estimate) > SMALL:
            given = buckets.get(f"{table[0]}.{table[1]}")
            bucketed[len(planned) + len(bucketed)] = _bucketed_digest(
                conn, *table[:3], h, given=given
            )
        else:
            planned.append(table)
    tables: list[TableDigest] = []
    for start in range(0, len(planned), _BATCH):
        batch = planned[start : start + _BATCH]
        tables += _batch_digests(conn, batch) or [_digest(conn, *table) for table in batch]
    for position, digest in sorted(bucketed.items()):  # back in catalog order
        tables.insert(position, digest)
    return DataFingerprint(
        tables=tuple(tables), large_objects=large_objects_digest(conn), row_hash=version
    )


def _bucketed_digest(
    conn: Connection[Any],
    schema: str,
    name: str,
    key: tuple[str, ...],
    h: sql.Composed,
    *,
    given: Bucketing | None,
) -> TableDigest:
    """One table's digest from its digests per key range (the plain one if it cannot be).

    ``given`` is used when it buckets by this table's first key column; otherwise the
    bucketing is chosen from the table itself.
    """
    bucketing, digests = None, None
    conn.execute("SAVEPOINT drill_digest")
    try:
        plan_for_grouping(conn)
        bucketing = given
        if bucketing is None or bucketing.column != key[0]:
            bucketing = choose_bucketing(conn, schema, name, key[0])
        if bucketing is not None:
            digests = bucket_digests(conn, sql.Identifier(schema, name), h, bucketing)
    except _UNREADABLE:
        digests = None
    # Only read here: rolling back undoes the planner settings alone.
    conn.execute("ROLLBACK TO SAVEPOINT drill_digest")
    if bucketing is None or digests is None:
        return _digest(conn, schema, name, key, h)
    return TableDigest(
        schema,
        name,
        rows=sum(n for n, _ in digests.values()),
        digest=str(sum(int(d) for _, d in digests.values())),
        key=key,
        buckets=TableBuckets(bucketing, digests),
    )


def _batch_digests(
    conn: Connection[Any], batch: list[tuple[str, str, tuple[str, ...], sql.Composed | None]]
) -> list[TableDigest] | None:
    """Digest ``batch`` in one query; None when a table of it cannot be read."""
    parts = [
        sql.SQL("SELECT {i}, count(*), coalesce(sum({h}), 0)::text FROM ONLY {t} t").format(
            i=sql.Literal(i), h=h, t=sql.Identifier(schema, name)
        )
        for i, (schema, name, _, h) in enumerate(batch)
        if h is not None
    ]
    found: dict[int, tuple[int, str]] = {}
    if parts:
        query = sql.SQL("SAVEPOINT drill_digest; {}").format(sql.SQL(" UNION ALL ").join(parts))
        try:
            cur = conn.execute(query)
            cur.nextset()
            found = {int(i): (int(n), str(d)) for i, n, d in cur.fetchall()}
            conn.execute("RELEASE SAVEPOINT drill_digest")
        except _UNREADABLE:
            conn.execute("ROLLBACK TO SAVEPOINT drill_digest")
            return None
    return [
        TableDigest(schema, name, rows=found[i][0], digest=found[i][1], key=key)
        if h is not None
        else TableDigest(schema, name, rows=0, digest=NOT_POPULATED, key=key, populated=False)
        for i, (schema, name, key, h) in enumerate(batch)
    ]
