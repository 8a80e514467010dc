"""Drill steps for the stores beside the database: an image bucket, a key-value store.

The lesson application keeps user images in a bucket (``public.user_images`` maps each
image key to its user) and login sessions in Redis (``session:<token>``, a hash whose
``user_id`` names a user, expiring in a day). These steps seed both, break them, and check
that after a restore they agree with the database again (:func:`cross_checks`): every image
a row references exists in the bucket, every session belongs to an existing user.

Canaries make the recovery point of each store measurable, as the database's canary rows
do: ``canary/<UTC time>`` objects in the bucket and ``canary:<UTC time>`` keys in the store,
written before the backup and again just before the disaster. After the restore, the newest
canary present bounds the data lost.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from datetime import UTC, date, datetime

from psycopg import sql

from harness.config import PgTarget
from harness.drill.run import DrillRun
from harness.errors import DrillError, ObjectNotFound
from harness.kv.base import KvEntry, KvStore
from harness.objects.bucket import Bucket
from harness.objects.manifest import ROOT, ObjectManifest, set_id_problem
from harness.pg.sql import connect
from harness.sets.location import Location, parse_location
from harness.sets.manifest import MANIFEST
from harness.verify.checks import CheckResult

IMAGES_TABLE = "user_images"
SESSION_PREFIX = b"session:"
SESSION_SECONDS = 86_400
CANARY_PREFIX = "canary/"
KV_CANARY_PREFIX = b"canary:"


def user_ids(app: PgTarget, *, limit: int = 50) -> list[str]:
    """Ids of the application's first users (``auth.users``)."""
    with connect(app) as conn:
        rows = conn.execute("SELECT id::text FROM auth.users ORDER BY id LIMIT %s", (limit,))
        return [str(r[0]) for r in rows]


def seed_images(app: PgTarget | None, bucket: Bucket, *, count: int = 40) -> list[str]:
    """Upload ``count`` images (4-64 KiB, content type, metadata), referenced from the database.

    Given the application database, each image gets a row of ``public.user_images``.

    Returns:
        The image keys.

    """
    users = user_ids(app) if app is not None else [f"user-{i}" for i in range(10)]
    if not users:
        raise DrillError("the application has no users to own images")
    keys = []
    for i in range(count):
        user = users[i % len(users)]
        key = f"users/{user}/photo-{i:03d}.jpg"
        body = _image_bytes(i)
        bucket.client.put_object(
            Bucket=bucket.name,
            Key=bucket.full_key(key),
            Body=body,
            ContentType="image/jpeg",
            Metadata={"owner": user, "sha256": hashlib.sha256(body).hexdigest()[:16]},
        )
        keys.append(key)
    if app is not None:
        with connect(app) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS public.{} (key text PRIMARY KEY, "
                    "user_id uuid NOT NULL REFERENCES auth.users (id))"
                ).format(sql.Identifier(IMAGES_TABLE))
            )
            with conn.cursor() as cur:
                cur.executemany(
                    sql.SQL("INSERT INTO public.{} (key, user_id) VALUES (%s, %s)").format(
                        sql.Identifier(IMAGES_TABLE)
                    ),
                    [(k, k.split("/")[1]) for k in keys],
                )
            conn.commit()
    return keys


def _image_bytes(i: int) -> bytes:
    # JPEG magic, then random bytes: binary, incompressible, 4-64 KiB.
    return b"\xff\xd8\xff\xe0" + os.urandom(4096 + (i * 1531) % (60 * 1024))


def seed_sessions(store: KvStore, users: list[str], *, per_user: int = 2) -> int:
    """Write login sessions (hashes with ``user_id``, expiring) and binary cache values.

    Returns:
        The number of keys written.

    """
    expires = int(time.time() * 1000) + SESSION_SECONDS * 1000
    written = 0
    for user in users:
        for _ in range(per_user):
            token = secrets.token_hex(8).encode()
            store.write(
                KvEntry.hash(
                    SESSION_PREFIX + token,
                    [(b"user_id", user.encode()), (b"agent", 'ブラウザ "q"'.encode())],
                    expires_at_ms=expires,
                )
            )
            written += 1
    for i in range(10):
        store.write(KvEntry.string(b"cache:\xff" + bytes([i]), os.urandom(64) + b"\x00\xff"))
        written += 1
    store.write(KvEntry.list_(b"recent-logins", [u.encode() for u in users[:10]]))
    store.write(KvEntry.zset(b"leaderboard", [(u.encode(), i * 1.5) for i, u in enumerate(users)]))
    return written + 2


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


def _parse_stamp(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)


def kv_canary(store: KvStore) -> datetime:
    """Write one canary key to the key-value store; return its time."""
    now = datetime.now(UTC)
    store.write(KvEntry.string(KV_CANARY_PREFIX + _stamp(now).encode(), _stamp(now).encode()))
    return now


def newest_kv_canary(store: KvStore) -> datetime | None:
    """The newest canary key present in the key-value store."""
    listed = store.keys()
    stamps = [k[len(KV_CANARY_PREFIX) :].decode() for k in listed if k.startswith(KV_CANARY_PREFIX)]
    return _parse_stamp(max(stamps)) if stamps else None


def write_canaries(bucket: Bucket, store: KvStore | None) -> datetime:
    """Write one canary to the bucket (and the key-value store); return its time."""
    now = datetime.now(UTC)
    stamp = _stamp(now)
    bucket.client.put_object(
        Bucket=bucket.name, Key=bucket.full_key(CANARY_PREFIX + stamp), Body=stamp.encode()
    )
    if store is not None:
        store.write(KvEntry.string(KV_CANARY_PREFIX + stamp.encode(), stamp.encode()))
    return now


def newest_canary(bucket: Bucket, store: KvStore | None = None) -> datetime | None:
    """The newest canary present in the bucket (and, given one, in the store too)."""
    stamps = {o.key.removeprefix(CANARY_PREFIX) for o in bucket.list(CANARY_PREFIX)}
    if store is not None:
        listed = store.keys()
        prefix = len(KV_CANARY_PREFIX)
        stamps &= {k[prefix:].decode() for k in listed if k.startswith(KV_CANARY_PREFIX)}
    return _parse_stamp(max(stamps)) if stamps else None


def empty_bucket(bucket: Bucket, *, overwrite: int = 5) -> tuple[int, int]:
    """Disaster: overwrite ``overwrite`` objects with junk and delete every other one.

    Returns:
        (objects deleted, objects overwritten).

    """
    listed = bucket.list()
    victims = [o.key for o in listed if not o.key.startswith(CANARY_PREFIX)][:overwrite]
    for key in victims:
        bucket.client.put_object(
            Bucket=bucket.name, Key=bucket.full_key(key), Body=b"encrypted by ransomware"
        )
    deleted = 0
    for o in listed:
        if o.key not in victims:
            bucket.delete(o.key)
            deleted += 1
    return deleted, len(victims)


def flush_store(store: KvStore) -> int:
    """Disaster: delete every key of the store; return how many there were."""
    keys = list(store.keys())
    for key in keys:
        store.delete(key)
    return len(keys)


def cross_checks(app: PgTarget, bucket: Bucket, store: KvStore) -> list[CheckResult]:
    """After a restore to one recovery point: the three stores agree with each other."""
    with connect(app) as conn:
        referenced = {
            str(r[0])
            for r in conn.execute(
                sql.SQL("SELECT key FROM public.{}").format(sql.Identifier(IMAGES_TABLE))
            )
        }
        users = {str(r[0]) for r in conn.execute("SELECT id::text FROM auth.users")}
    present = {o.key for o in bucket.list()}
    lost_images = sorted(referenced - present)
    orphans = []
    sessions = 0
    for key in list(store.keys()):
        if not key.startswith(SESSION_PREFIX):
            continue
        entry = store.read(key)
        if entry is None:
            continue
        sessions += 1
        owner = next((v for f, v in _pairs(entry) if f == b"user_id"), b"")
        if owner.decode(errors="replace") not in users:
            orphans.append(key.decode(errors="backslashreplace"))
    return [
        CheckResult(
            "every image a row references is in the bucket",
            ok=bool(referenced) and not lost_images,
            critical=True,
            detail=f"{len(referenced) - len(lost_images)} of {len(referenced)} present"
            + (f"; missing: {', '.join(lost_images[:5])}" if lost_images else ""),
        ),
        CheckResult(
            "every session belongs to an existing user",
            ok=sessions > 0 and not orphans,
            critical=True,
            detail=f"{sessions - len(orphans)} of {sessions} sessions"
            + (f"; orphans: {', '.join(orphans[:5])}" if orphans else ""),
        ),
    ]


def _pairs(entry: KvEntry) -> list[tuple[bytes, bytes]]:
    if entry.type != "hash":
        return []
    return [p for p in entry.value if isinstance(p, tuple) and isinstance(p[1], bytes)]


def database_set(backups: Bucket, set_id: str) -> Location:
    """The location of the database set ``set_id``: ``backups/database/<set_id>``."""
    return parse_location(f"s3://{backups.name}/{ROOT}/database/{set_id}", s3=backups.target)


def database_set_on_or_before(backups: Bucket, day: date) -> str:
    """The newest complete database set (one with its ``manifest.json``) of ``day`` or before.

    Raises:
        ObjectNotFound: none.

    """
    wanted = day.strftime("%Y%m%d")
    ids = sorted(
        parts[2]
        for o in backups.list(f"{ROOT}/database/")
        if len(parts := o.key.split("/")) == 4
        and parts[3] == MANIFEST
        and set_id_problem(parts[2]) is None
        and parts[2][:8] <= wanted
    )
    if not ids:
        raise ObjectNotFound(f"no database set on or before {day} in {backups.uri}")
    return ids[-1]


def record_store_rpo(run: DrillRun, last_before: datetime, newest_after: datetime | None) -> float:
    """RPO of a store from its canaries; recorded in the run's facts too."""
    run.facts["last store write before the disaster"] = last_before.isoformat(
        timespec="milliseconds"
    )
    run.facts["newest store write after recovery"] = (
        newest_after.isoformat(timespec="milliseconds") if newest_after else "none"
    )
    return run.record_rpo(last_before, newest_after)


def record_object_set(run: DrillRun, manifest: ObjectManifest, key: str) -> None:
    """Record which object set the drill took (evidence)."""
    run.facts[f"{manifest.kind} set"] = f"{key} ({len(manifest.entries)} objects, " + (
        f"{manifest.total_size} bytes, manifest sha256 {manifest.digest})"
    )
