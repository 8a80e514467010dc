"""Disasters a drill injects: each refuses targets that may not take destructive steps."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass

from psycopg import sql

from harness.config import PgTarget
from harness.errors import StorageError, UnsafeTargetError, UnsupportedByProvider
from harness.infra.providers.base import PgServer
from harness.pg.sql import connect, require_destructive
from harness.storage.s3 import S3ObjectStore


def destroy_server(server: PgServer) -> None:
    """Complete data loss: stop the server and delete its data directory.

    Raises:
        UnsafeTargetError: the server may not take destructive steps.
        UnsupportedByProvider: the server's data directory is not on this machine.

    """
    require_destructive(server.target(), "delete the data directory")
    if server.datadir is None:
        raise UnsupportedByProvider("this server's data directory is not on this machine")
    server.stop()
    shutil.rmtree(server.datadir)


def corrupt_data_file(server: PgServer, table: str, *, offset: int = 4000) -> str:
    """Physical corruption: overwrite bytes in the first page of ``table``'s data file.

    The server is stopped while the file is changed (as a failing disk would leave it) and
    started again. Returns the damaged file's path.

    Raises:
        UnsafeTargetError: the server may not take destructive steps.
        UnsupportedByProvider: the server's data directory is not on this machine.

    """
    target = server.target("app")
    require_destructive(target, f"corrupt the data file of {table}")
    if server.datadir is None:
        raise UnsupportedByProvider("this server's data directory is not on this machine")
    schema, _, name = table.rpartition(".")
    with connect(target) as conn:
        row = conn.execute(
            "SELECT pg_relation_filepath(%s::regclass)",
            (sql.Identifier(schema, name).as_string(conn),),
        ).fetchone()
        conn.execute("CHECKPOINT")
    path = server.datadir / str(row[0] if row else "")
    server.stop()
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(b"\xde\xad\xbe\xef" * 8)
    server.start()
    return str(path)


def encrypt_in_place(target: PgTarget, columns: dict[str, list[str]]) -> int:
    """Ransomware: replace text columns with their pgcrypto ciphertext; return rows hit.

    Args:
        target: the database.
        columns: ``schema.table`` -> text columns to encrypt.

    """
    require_destructive(target, "encrypt tables")
    key = secrets.token_urlsafe(16)  # the attacker keeps it
    hit = 0
    with connect(target) as conn:
        for table, names in columns.items():
            schema, _, name = table.rpartition(".")
            assignments = sql.SQL(", ").join(
                sql.SQL(
                    "{c} = encode(extensions.pgp_sym_encrypt({c}::text, %(k)s), 'base64')"
                ).format(c=sql.Identifier(col))
                for col in names
            )
            hit += conn.execute(
                sql.SQL("UPDATE {} SET {}").format(sql.Identifier(schema, name), assignments),
                {"k": key},
            ).rowcount
        conn.commit()
    return hit


@dataclass(frozen=True)
class BackupAttack:
    """What an attacker holding the backup credentials managed to do."""

    versions_found: int
    deletes_refused: int
    deletes_done: int
    overwrites_done: int


def destroy_backups(store: S3ObjectStore, prefix: str) -> BackupAttack:
    """Try to delete every version under ``prefix``, then overwrite and delete every key."""
    require = store.target.destructive_ok
    if not require:
        raise UnsafeTargetError(f"refusing to attack backups in {store.location}")
    versions = [v for v in store.versions(prefix) if not v.deleted]
    refused = done = 0
    for version in versions:
        try:
            store.delete_version(version.key, version.version_id)
            done += 1
        except StorageError:
            refused += 1
    keys = sorted({v.key for v in versions})
    for key in keys:
        store.put_bytes(key, b"encrypted: pay 10 BTC to get your backups back")
        store.delete(key)
    return BackupAttack(
        versions_found=len(versions),
        deletes_refused=refused,
        deletes_done=done,
        overwrites_done=len(keys),
    )


# How to garble a value of each kind of type, keeping the type.
_GARBLE = {
    "text": "md5({c}::text)",
    "character varying": "md5({c}::text)",
    "numeric": "{c} + 1",
    "integer": "{c} + 1",
    "bigint": "{c} + 1",
    "jsonb": "jsonb_build_object('garbled', md5({c}::text))",
}


def overwrite_rows(target: PgTarget, table: str, column: str, *, every: int) -> int:
    """Logical corruption: garble ``column`` in about one row in ``every``; return rows hit."""
    require_destructive(target, f"corrupt {table}")
    schema, _, name = table.rpartition(".")
    relation = sql.Identifier(schema, name)
    with connect(target) as conn:
        row = conn.execute(
            "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = "
            "%s::regclass AND attname = %s",
            (relation.as_string(conn), column),
        ).fetchone()
        kind = str(row[0]) if row else "unknown"
        if kind not in _GARBLE:
            raise ValueError(f"cannot garble {table}.{column} of type {kind}")
        # The expression comes from the fixed table above; only identifiers vary.
        garbled = sql.SQL(_GARBLE[kind]).format(c=sql.Identifier(column))
        n = conn.execute(
            sql.SQL(
                "UPDATE {t} SET {c} = {g} WHERE ctid IN (SELECT ctid FROM {t} "
                "WHERE (('x' || substr(md5(ctid::text), 1, 8))::bit(32)::int) % {e} = 0)"
            ).format(t=relation, c=sql.Identifier(column), g=garbled, e=sql.Literal(every))
        ).rowcount
        conn.commit()
    return int(n)


def run_statement(target: PgTarget, statement: sql.SQL | sql.Composed) -> int:
    """An operator's mistake (DELETE without WHERE, TRUNCATE ...); return rows affected."""
    require_destructive(target, "run a destructive statement")
    with connect(target) as conn:
        n = conn.execute(statement).rowcount
        conn.commit()
    return int(n)
