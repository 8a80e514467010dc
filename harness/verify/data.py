"""Data fingerprint: per table, the exact row count and an order-independent content hash.

Computed inside PostgreSQL in one sequential pass per table: every row is hashed to 64 bits
and the table's digest is the sum of its rows' hashes (so row order, page layout and the
server do not matter). A row's hash combines its columns' hashes in column order; each
column is hashed by its type's own hash function where that is a pure function of the value
(integers, text, uuid, numeric, floats, jsonb, timestamps), and by the hash of its text form,
with the session settings fixed (:mod:`harness.verify.session`), for everything else
(enums, whose binary hash is an OID; json; arrays; composites; intervals; bytea; geometric
types and xml, which have no hash or equality at all ...). Hash functions of these types are
stable across major versions (hash partitioning depends on it).

Which relations hold data of their own, as pg_dump sees it: tables (logged or unlogged: both
are dumped) and materialized views, each read with ``ONLY`` so that a classic inheritance
parent does not count its children's rows again. Partitioned parents hold no rows (their
leaves do), foreign tables' rows live on another server, and temporary tables belong to a
session, not to the database: none of these is read. A materialized view that was never
populated cannot be read either; its state is recorded instead, and compared. Large objects
are counted and hashed by content, in chunks, apart from the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import Connection, errors, sql

from harness.config import PgTarget
from harness.verify.session import in_snapshot

# Base type name (of pg_catalog's types only) -> SQL template of a bigint hash of {col}.
_TYPE_HASH = {
    "int2": "hashint4extended({col}::int4, 0)",
    "int4": "hashint4extended({col}, 0)",
    "int8": "hashint8extended({col}, 0)",
    "bool": "hashint4extended({col}::int4, 0)",
    "text": "hashtextextended({col}::text, 0)",
    "varchar": "hashtextextended({col}::text, 0)",
    "name": "hashtextextended({col}::text, 0)",
    "bpchar": "hashbpcharextended({col}::bpchar, 0)",
    "uuid": "uuid_hash_extended({col}::uuid, 0)",
    "numeric": "hash_numeric_extended({col}::numeric, 0)",
    "float4": "hashfloat8extended({col}::float8, 0)",
    "float8": "hashfloat8extended({col}::float8, 0)",
    "jsonb": "jsonb_hash_extended({col}::jsonb, 0)",
    "timestamp": "timestamp_hash_extended({col}::timestamp, 0)",
    "timestamptz": "timestamp_hash_extended({col} AT TIME ZONE 'UTC', 0)",
}
_TEXT_HASH = "hashtextextended({col}::text, 0)"
_NULL = "-7046029254386353131"  # stands for NULL in a row's column hashes
NOT_POPULATED = "not populated"
LO_CHUNK = 1 << 20  # large objects are read and hashed a mebibyte at a time

# Relations with rows of their own in a dump: see the module docstring.
_DATA_RELATIONS = """
SELECT n.nspname, c.relname, c.relispopulated FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

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

    def get(self, qualified: str) -> TableDigest | None:
        """The digest of ``schema.name``, if present."""
        return next((t for t in self.tables if t.qualified == qualified), None)


def row_hash(conn: Connection[Any], schema: str, name: str, *, alias: str = "t") -> sql.Composed:
    """A bigint expression hashing one row of ``schema.name`` (columns in order)."""
    # A domain is hashed as its base type; only pg_catalog's types have a template (a user
    # type may be called "uuid" or "int4" too).
    columns = conn.execute(
        "SELECT a.attname, CASE WHEN b.typnamespace = 'pg_catalog'::regnamespace "
        "THEN b.typname END FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchall()
    values = []
    for column, typname in columns:
        # The templates are constants of this module; only identifiers are interpolated.
        template = _TYPE_HASH.get(str(typname), _TEXT_HASH).replace("{col}", "{c}")
        expr = sql.SQL(template).format(c=sql.Identifier(alias, column))
        values.append(sql.SQL("coalesce({}, {})").format(expr, sql.SQL(_NULL)))
    if not values:
        # A table without columns: every row hashes alike, and the count tells them apart.
        return sql.Composed([sql.SQL("0::int8")])
    # Each column's hash seeds the next: a non-linear chain, so that summing row hashes per
    # table cannot cancel out values swapped between rows (a linear combination, like
    # hash_array_extended's 31 * h + x, would):
    # hashint8extended(h_n, ... hashint8extended(h_2, h_1)). Built flat, not as nested
    # Composed objects, which would recurse once per column (1,600 at most) when rendered.
    parts: list[sql.Composable] = []
    for value in reversed(values[1:]):
        parts += [sql.SQL("hashint8extended("), value, sql.SQL(", ")]
    parts.append(values[0])
    parts.append(sql.SQL(")" * (len(values) - 1)))
    return sql.Composed(parts)


def primary_key(conn: Connection[Any], schema: str, name: str) -> tuple[str, ...]:
    """The primary-key columns of ``schema.name`` in key order."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = %s::regclass "
        "AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def table_digest(
    conn: Connection[Any], schema: str, name: str, *, populated: bool = True
) -> TableDigest:
    """Count and digest one table in one pass (its own rows, not its children's).

    Args:
        conn: an open connection, in the caller's snapshot.
        schema: the table's schema.
        name: the table's name.
        populated: false for a materialized view never populated: it is not read.

    """
    key = primary_key(conn, schema, name)
    if not populated:
        return TableDigest(schema, name, rows=0, digest=NOT_POPULATED, key=key, populated=False)
    query = sql.SQL("SELECT count(*), coalesce(sum({h}), 0)::text FROM ONLY {t} t").format(
        h=row_hash(conn, schema, name), t=sql.Identifier(schema, name)
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
    conn.execute("SAVEPOINT drill_digest")
    try:
        row = conn.execute(query, params).fetchone()
        conn.execute("RELEASE SAVEPOINT drill_digest")
    except _UNREADABLE as exc:
        # Say so, and go on with the other tables; the comparison fails this one.
        conn.execute("ROLLBACK TO SAVEPOINT drill_digest")
        return -1, "unreadable: " + str(exc).splitlines()[0]
    return (int(row[0]), str(row[1])) if row else (0, "0")


def data_fingerprint(target: PgTarget) -> DataFingerprint:
    """Digest every user table of ``target``'s database, in one snapshot."""
    return in_snapshot(target, read_data_fingerprint)


def data_relations(conn: Connection[Any]) -> list[tuple[str, str, bool]]:
    """``(schema, name, populated)`` of every relation whose rows a dump holds."""
    return [(str(s), str(n), bool(p)) for s, n, p in conn.execute(_DATA_RELATIONS).fetchall()]


def read_data_fingerprint(conn: Connection[Any]) -> DataFingerprint:
    """Digest every user table on an open connection (settings fixed by the caller)."""
    return DataFingerprint(
        tables=tuple(table_digest(conn, s, n, populated=p) for s, n, p in data_relations(conn)),
        large_objects=large_objects_digest(conn),
    )
