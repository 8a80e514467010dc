"""Data fingerprint: per table, the exact row count and an order-independent content hash.

Computed inside PostgreSQL in one sequential pass per table: every row is hashed to 64 bits
and the table's digest is the sum of its rows' hashes (so row order, page layout and the
server do not matter). A row's hash combines its columns' hashes in column order; each
column is hashed by its type's own hash function where that is a pure function of the value
(integers, text, uuid, numeric, floats, jsonb, timestamps), and by the hash of its text form,
with the session settings fixed (:mod:`harness.verify.session`), for everything else
(enums, whose binary hash is an OID; json; arrays; composites; intervals; bytea ...). Hash
functions of these types are stable across major versions (hash partitioning depends on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection, errors, sql

from harness.config import PgTarget
from harness.pg.sql import user_relations
from harness.verify.session import in_snapshot

# Base type name -> SQL template of a bigint hash of {col}.
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


@dataclass(frozen=True)
class TableDigest:
    """Row count and content digest of one table."""

    schema: str
    name: str
    rows: int
    digest: str
    key: tuple[str, ...]  # primary-key columns, empty when the table has none

    @property
    def qualified(self) -> str:
        """``schema.name``."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class DataFingerprint:
    """Digests of every user table and materialized view."""

    tables: tuple[TableDigest, ...]

    def get(self, qualified: str) -> TableDigest | None:
        """The digest of ``schema.name``, if present."""
        return next((t for t in self.tables if t.qualified == qualified), None)


def row_hash(conn: Connection[Any], schema: str, name: str, *, alias: str = "t") -> sql.Composed:
    """A bigint expression hashing one row of ``schema.name`` (columns in order)."""
    columns = conn.execute(
        "SELECT a.attname, coalesce(bt.typname, t.typname) FROM pg_attribute a "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchall()
    row: sql.Composable | None = None
    for column, typname in columns:
        # The templates are constants of this module; only identifiers are interpolated.
        template = _TYPE_HASH.get(str(typname), _TEXT_HASH).replace("{col}", "{c}")
        expr = sql.SQL(template).format(c=sql.Identifier(alias, column))
        value = sql.SQL("coalesce({}, {})").format(expr, sql.SQL(_NULL))
        # Each column's hash seeds the next: a non-linear chain, so that summing row hashes
        # per table cannot cancel out values swapped between rows (a linear combination,
        # like hash_array_extended's 31 * h + x, would).
        row = value if row is None else sql.SQL("hashint8extended({}, {})").format(value, row)
    return sql.Composed([row if row is not None else sql.SQL("0::int8")])


def primary_key(conn: Connection[Any], schema: str, name: str) -> tuple[str, ...]:
    """The primary-key columns of ``schema.name`` in key order."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = %s::regclass "
        "AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def table_digest(conn: Connection[Any], schema: str, name: str) -> TableDigest:
    """Count and digest one table in one pass."""
    query = sql.SQL("SELECT count(*), coalesce(sum({h}), 0)::text FROM {t} t").format(
        h=row_hash(conn, schema, name), t=sql.Identifier(schema, name)
    )
    conn.execute("SAVEPOINT drill_digest")
    try:
        row = conn.execute(query).fetchone()
        rows, digest = (int(row[0]), str(row[1])) if row else (0, "0")
        conn.execute("RELEASE SAVEPOINT drill_digest")
    except errors.DataCorrupted as exc:
        # A page failed its checksum: the table is damaged; say so instead of failing.
        conn.execute("ROLLBACK TO SAVEPOINT drill_digest")
        rows, digest = -1, "unreadable: " + str(exc).splitlines()[0]
    return TableDigest(
        schema=schema, name=name, rows=rows, digest=digest, key=primary_key(conn, schema, name)
    )


def data_fingerprint(target: PgTarget) -> DataFingerprint:
    """Digest every user table of ``target``'s database, in one snapshot."""
    return in_snapshot(target, read_data_fingerprint)


def read_data_fingerprint(conn: Connection[Any]) -> DataFingerprint:
    """Digest every user table on an open connection (settings fixed by the caller)."""
    return DataFingerprint(
        tables=tuple(table_digest(conn, s, n) for s, n in user_relations(conn, "rm"))
    )
