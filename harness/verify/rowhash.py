"""Row hashes: a bigint per row, chaining its columns' hashes (see :mod:`harness.verify.data`).

Version 2 (:data:`ROW_HASH`) seeds each column's hash with the chain so far, one hash call
per column; a row with a NULL takes the NULL-safe chain (each column hashed alone, then
mixed in), which is all that version 1 had. Types whose hash is a pure function of the value
are hashed as values, others by their text form (session settings fixed by the caller).
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection, sql

ROW_HASH = 2  # the row hash version new fingerprints use (1: fingerprint formats 1 and 2)
ROW_HASHES = frozenset({1, ROW_HASH})
SEEDED_UP_TO = 100  # columns; wider tables take only the NULL-safe chain (version 2)

# Base type name (of pg_catalog's types only) -> SQL template of a bigint hash of {col},
# seeded with {seed}; the seed is the template's last argument.
_TYPE_HASH = {
    "int2": "hashint2extended({col}, {seed})",
    "int4": "hashint4extended({col}, {seed})",
    "int8": "hashint8extended({col}, {seed})",
    "oid": "hashoidextended({col}, {seed})",
    "bool": "hashint4extended({col}::int4, {seed})",
    "char": "hashcharextended({col}, {seed})",
    "text": "hashtextextended({col}, {seed})",
    "varchar": "hashtextextended({col}, {seed})",
    "name": "hashnameextended({col}, {seed})",
    "bpchar": "hashbpcharextended({col}, {seed})",
    "uuid": "uuid_hash_extended({col}, {seed})",
    "numeric": "hash_numeric_extended({col}, {seed})",
    "float4": "hashfloat4extended({col}, {seed})",
    "float8": "hashfloat8extended({col}, {seed})",
    "jsonb": "jsonb_hash_extended({col}, {seed})",
    "date": "timestamp_hash_extended({col}::timestamp, {seed})",
    "time": "time_hash_extended({col}, {seed})",
    "timetz": "timetz_hash_extended({col}, {seed})",
    "timestamp": "timestamp_hash_extended({col}, {seed})",
    "timestamptz": "timestamp_hash_extended({col} AT TIME ZONE 'UTC', {seed})",
    "inet": "hashinetextended({col}, {seed})",
    "cidr": "hashinetextended({col}, {seed})",
    "macaddr": "hashmacaddrextended({col}, {seed})",
    "macaddr8": "hashmacaddr8extended({col}, {seed})",
}
_TEXT_HASH = "hashtextextended({col}::text, {seed})"
# Version 1: fewer types, each hashed with seed 0 and then mixed into the chain.
_TYPE_HASH_V1 = {
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
_TEXT_HASH_V1 = "hashtextextended({col}::text, 0)"
_NULL = "-7046029254386353131"  # stands for NULL in a row's column hashes

# What a row hash needs of a table: its columns in order, each with its type's name when the
# (domain's base) type is pg_catalog's (a user type may be called "uuid" or "int4" too).
TYPNAME = "CASE WHEN b.typnamespace = 'pg_catalog'::regnamespace THEN b.typname::text END"
COLUMNS_OF = """
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = {rel} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""

Column = tuple[str, str | None]  # name, and its pg_catalog base type's name (None: another)


def row_hash(
    conn: Connection[Any], schema: str, name: str, *, alias: str = "t", version: int = ROW_HASH
) -> sql.Composed:
    """A bigint expression hashing one row of ``schema.name`` (columns in order).

    Args:
        conn: an open connection.
        schema: the table's schema.
        name: the table's name.
        alias: how the query names the table.
        version: the row hash version (:data:`ROW_HASHES`).

    """
    rows = conn.execute(
        f"SELECT a.attname::text, {TYPNAME} {COLUMNS_OF.format(rel='%s::regclass')}",
        (sql.Identifier(schema, name).as_string(conn),),
    ).fetchall()
    return hash_expression([(str(c), t) for c, t in rows], alias=alias, version=version)


def hash_expression(
    columns: list[Column], *, alias: str = "t", version: int = ROW_HASH
) -> sql.Composed:
    """The row hash over ``columns`` of the table called ``alias`` in the query.

    Args:
        columns: ``(name, type)`` of every column, in order (see :data:`Column`).
        alias: how the query names the table.
        version: the row hash version (:data:`ROW_HASHES`).

    Raises:
        ValueError: an unknown version.

    """
    if version not in ROW_HASHES:
        raise ValueError(f"unknown row hash version {version}")
    if not columns:
        # A table without columns: every row hashes alike, and the count tells them apart.
        return sql.Composed([sql.SQL("0::int8")])
    if version == 1:
        return _mixed_chain(columns, alias, version=1)
    safe = _mixed_chain(columns, alias, version=version)
    if len(columns) > SEEDED_UP_TO:
        # So wide a row is rare, and planning both chains costs more than it saves.
        return safe
    # Rows without a NULL take the seeded chain; a NULL makes it NULL (strict functions),
    # and those rows take the NULL-safe chain instead.
    seeded = _seeded_chain(columns, alias)
    if len(columns) == 1:
        return sql.Composed([sql.SQL("coalesce("), seeded, sql.SQL(", " + _NULL + ")")])
    return sql.Composed([sql.SQL("coalesce("), seeded, sql.SQL(", "), safe, sql.SQL(")")])


def _split(template: str) -> tuple[str, str, str]:
    """A column hash template split around its column and its seed: three SQL fragments."""
    before, _, rest = template.partition("{col}")
    middle, _, after = rest.partition("{seed}")
    return before, middle, after


# The templates split once: building an expression is then joining fragments, not parsing
# a format string per column (1,600 columns at most, at every fingerprint of the table).
_SPLIT = {name: _split(template) for name, template in _TYPE_HASH.items()}
_SPLIT_TEXT = _split(_TEXT_HASH)
_SPLIT_V1 = {name: _split(template) for name, template in _TYPE_HASH_V1.items()}
_SPLIT_TEXT_V1 = _split(_TEXT_HASH_V1)


def _seeded_chain(columns: list[Column], alias: str) -> sql.Composed:
    # h_n = H_n(c_n, h_n-1), ..., h_1 = H_1(c_1, 0): each column's hash is seeded with the
    # chain so far. Built flat, not as nested Composed objects, which would recurse once per
    # column (1,600 at most) when rendered: every opening part, the first seed, then every
    # closing part. The fragments are constants of this module; only identifiers are
    # interpolated.
    opening: list[sql.Composable] = []
    closing: list[sql.Composable] = []
    for name, typname in reversed(columns):
        before, middle, after = _SPLIT.get(str(typname), _SPLIT_TEXT)
        opening += [sql.SQL(before), sql.Identifier(alias, name), sql.SQL(middle)]
        closing.append(sql.SQL(after))
    return sql.Composed([*opening, sql.SQL("0"), *reversed(closing)])


def _mixed_chain(columns: list[Column], alias: str, *, version: int) -> sql.Composed:
    # Each column hashed on its own (NULL: a constant), then mixed into the chain:
    # hashint8extended(h_n, ... hashint8extended(h_2, h_1)). A non-linear chain, so that
    # summing row hashes cannot cancel out values swapped between rows (a linear
    # combination, like hash_array_extended's 31 * h + x, would). Built flat (see above).
    split, text = (_SPLIT_V1, _SPLIT_TEXT_V1) if version == 1 else (_SPLIT, _SPLIT_TEXT)
    seed = "" if version == 1 else "0"  # version 1 templates carry their seed, 0
    values: list[list[sql.Composable]] = []
    for name, typname in columns:
        before, middle, after = split.get(str(typname), text)
        values.append(
            [
                sql.SQL("coalesce(" + before),
                sql.Identifier(alias, name),
                sql.SQL(middle + seed + after + ", " + _NULL + ")"),
            ]
        )
    parts: list[sql.Composable] = []
    for value in reversed(values[1:]):
        parts += [sql.SQL("hashint8extended("), *value, sql.SQL(", ")]
    parts += values[0]
    parts.append(sql.SQL(")" * (len(values) - 1)))
    return sql.Composed(parts)
