"""Remove what a drill created on systems that outlive it: its databases and its buckets.

Only names the harness made for this run are touched (see :mod:`harness.infra.naming`): they
are ours whatever the allow-list says, so removing them needs no destructive permission, and
no other database or bucket can match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql

from harness.config import PgTarget
from harness.errors import DrillError
from harness.infra.naming import DATABASE_PREFIX
from harness.pg.sql import connect, terminate_sessions
from harness.redact import get_logger
from harness.storage.s3 import S3ObjectStore, translate

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

log = get_logger(__name__)

_DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes


def databases_in(target: PgTarget, namespace: str) -> list[str]:
    """The databases on ``target``'s server whose names start with ``namespace``.

    Raises:
        ValueError: ``namespace`` is not one the harness makes (a safety net: a prefix
            such as ``""`` would match every database).
        ConnectError: the server cannot be reached.

    """
    if not namespace.startswith(DATABASE_PREFIX) or len(namespace) <= len(DATABASE_PREFIX):
        raise ValueError(f"{namespace!r} is not a drill namespace")
    with connect(target.with_dbname("postgres")) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE left(datname, length(%s)) = %s ORDER BY 1",
            (namespace, namespace),
        ).fetchall()
    return [str(r[0]) for r in rows]


def drop_databases(target: PgTarget, namespace: str) -> list[str]:
    """Drop every database of a drill's ``namespace`` (sessions ended first); return them.

    Raises:
        ValueError: ``namespace`` is not a drill namespace.
        ConnectError: the server cannot be reached.

    """
    names = databases_in(target, namespace)
    with connect(target.with_dbname("postgres"), autocommit=True) as conn:
        for name in names:
            terminate_sessions(conn, name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    if names:
        log.info("dropped %d drill database(s) on %s: %s", len(names), target.display(), names)
    return names


@dataclass(frozen=True)
class BucketRemoval:
    """What removing one bucket achieved."""

    bucket: str
    removed: bool
    versions_left: int
    detail: str


def remove_bucket(store: S3ObjectStore) -> BucketRemoval:
    """Delete every object version and delete marker in the store's bucket, then the bucket.

    GOVERNANCE retention is bypassed; versions under COMPLIANCE retention cannot be deleted
    by anyone before their date, so such a bucket stays (its name is unique to the run, so
    it stands in nobody's way) and the result says why.
    """
    client = store.client
    left = 0
    try:
        pages = client.get_paginator("list_object_versions").paginate(Bucket=store.bucket)
        for page in pages:
            entries: list[ObjectIdentifierTypeDef] = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            for start in range(0, len(entries), _DELETE_BATCH):
                batch = entries[start : start + _DELETE_BATCH]
                response = client.delete_objects(
                    Bucket=store.bucket,
                    Delete={"Objects": batch, "Quiet": True},
                    BypassGovernanceRetention=True,
                )
                left += len(response.get("Errors", []))
        if left:
            detail = f"{left} object version(s) are under retention; the bucket stays"
            log.warning("cannot remove %s: %s", store.location, detail)
            return BucketRemoval(store.bucket, removed=False, versions_left=left, detail=detail)
        client.delete_bucket(Bucket=store.bucket)
    except (BotoCoreError, ClientError) as exc:
        error: DrillError = translate(exc, store.target, f"remove bucket {store.bucket}")
        log.warning("%s", error)
        return BucketRemoval(store.bucket, removed=False, versions_left=left, detail=str(error))
    return BucketRemoval(store.bucket, removed=True, versions_left=0, detail="removed")
