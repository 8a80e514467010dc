"""The spot-sharing application of the Cloudflare drills: D1 rows, KV sessions, R2 images.

Users post spots with a photo; the photo lives in R2 under the key its D1 row names
(``spots.image_key``), each signed-in user has a KV session whose metadata names the user,
and spot pages are cached in KV. Across the three stores two invariants hold, and a
recovery that restores the stores to different dates breaks them (C7):

- every image key a D1 row references exists in R2;
- every KV session belongs to a user that exists in D1.

Everything is generated from a seed (same seed, same data) and loaded with a handful of
wrangler calls: one SQL file, one bulk put (plus one call for the binary value, which bulk
put cannot carry), and the images through the R2 bridge.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.cloudflare import d1
from harness.cloudflare.kv import WorkersKv
from harness.cloudflare.r2 import BridgeBucket
from harness.cloudflare.wrangler import Wrangler
from harness.kv.base import KvEntry
from harness.verify.checks import CheckResult

DATABASE = "DB"
SCHEMA = """
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL);
CREATE TABLE spots (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
  name TEXT NOT NULL, lat REAL NOT NULL, lng REAL NOT NULL, image_key TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE INDEX spots_by_user ON spots (user_id);
CREATE TABLE reviews (id INTEGER PRIMARY KEY, spot_id TEXT NOT NULL REFERENCES spots(id),
  user_id TEXT NOT NULL REFERENCES users(id), rating INTEGER NOT NULL
  CHECK (rating BETWEEN 1 AND 5), body TEXT);
CREATE TABLE favorites (user_id TEXT NOT NULL REFERENCES users(id),
  spot_id TEXT NOT NULL REFERENCES spots(id), PRIMARY KEY (user_id, spot_id));
CREATE VIEW spot_ratings AS SELECT spot_id, avg(rating) AS rating, count(*) AS reviews
  FROM reviews GROUP BY spot_id;
CREATE TABLE drill_canary (id INTEGER PRIMARY KEY, label TEXT NOT NULL,
  written_at TEXT NOT NULL);
"""
# Names with a quote and non-ASCII text: the export and the import must carry both.
_NAMES = ("Aoi", "Haruto", "Yui", "O'Brien", "Sakura", "Ren", "Mio", "Sōta", "Hina", "Kaito")
_PLACES = ("shrine", "café", "park", "bridge", "market", "tower", "garden", "station")


@dataclass
class CloudflareApp:
    """What the drill loaded: ids and keys, for checks that need to know them."""

    users: list[str] = field(default_factory=list)
    spots: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    # Test data, not secrets: a seeded generator makes every run load the same rows.
    rng: random.Random = field(default_factory=lambda: random.Random(2024))  # noqa: S311


def seed(
    w: Wrangler,
    kv: WorkersKv,
    bucket: BridgeBucket,
    *,
    workdir: Path,
    scale: int = 1,
    app: CloudflareApp | None = None,
) -> CloudflareApp:
    """Load the schema (first time) and a batch of users, spots, reviews, sessions, images.

    Args:
        w: the project.
        kv: the sessions namespace.
        bucket: the images bucket.
        workdir: scratch space for the SQL file and images.
        scale: size factor (1: 12 users, 30 spots).
        app: add to an application already seeded (its ids continue).

    Raises:
        ToolFailed: wrangler refused something.

    """
    first = app is None
    app = app or CloudflareApp()
    rng = app.rng
    now = datetime.now(UTC).isoformat(timespec="seconds")
    statements = [SCHEMA] if first else []
    new_users = [f"u{len(app.users) + i:04d}" for i in range(12 * scale)]
    for uid in new_users:
        name = rng.choice(_NAMES)
        statements.append(_insert("users", uid, name, f"{uid}@example.test", now))
    app.users += new_users
    new_spots = []
    for i in range(30 * scale):
        sid = f"s{len(app.spots) + i:05d}"
        owner = rng.choice(app.users)
        key = f"spots/{sid}/photo-{rng.randrange(10**6):06d}.jpg"
        name = f"{rng.choice(_NAMES)}'s {rng.choice(_PLACES)}"
        lat, lng = 35 + rng.random(), 139 + rng.random()
        statements.append(_insert("spots", sid, owner, name, lat, lng, key, now))
        new_spots.append((sid, owner, key))
    app.spots += [s for s, _, _ in new_spots]
    for sid, _, _ in new_spots:
        for _ in range(rng.randrange(1, 4)):
            body = rng.choice(["great", "nice view", "too crowded", "よかった"])
            statements.append(
                _insert(
                    "reviews (spot_id, user_id, rating, body)",
                    sid,
                    rng.choice(app.users),
                    rng.randrange(1, 6),
                    body,
                )
            )
        statements.append(_insert("favorites", rng.choice(app.users), sid, verb="INSERT OR IGNORE"))
    sql_file = workdir / f"seed-{time.monotonic_ns()}.sql"
    sql_file.parent.mkdir(parents=True, exist_ok=True)
    sql_file.write_text("\n".join(statements) + "\n", encoding="utf-8")
    d1.import_sql(w, DATABASE, sql_file)

    expires = int(time.time() * 1000) + 7 * 24 * 3600 * 1000
    entries = []
    for uid in new_users[: max(1, len(new_users) * 2 // 3)]:
        token = f"session:{rng.randrange(16**12):012x}"
        session = {"user_id": uid, "signed_in_at": now}
        entries.append(
            KvEntry.string(
                token.encode(), json.dumps(session).encode(), expires_at_ms=expires,
                metadata={"user_id": uid},
            )
        )  # fmt: skip
        app.sessions.append(token)
    for sid, owner, key in new_spots:
        page = {"spot": sid, "owner": owner, "image": key, "title": "スポット"}
        entries.append(KvEntry.string(f"cache:spot:{sid}".encode(), json.dumps(page).encode()))
    if first:
        # One value that is not UTF-8: it takes the per-key path, byte for byte.
        entries.append(KvEntry.string(b"blob:placeholder", bytes(range(256)), metadata=None))
    kv.write_many(entries)

    for sid, owner, key in new_spots:
        image = workdir / "image.jpg"
        image.write_bytes(b"\xff\xd8\xff\xe0" + rng.randbytes(rng.randrange(1_000, 6_000)))
        bucket.upload(key, image, content_type="image/jpeg", metadata={"spot": sid, "owner": owner})
        app.images.append(key)
    return app


def cross_check(w: Wrangler, kv: WorkersKv, bucket: BridgeBucket) -> list[CheckResult]:
    """The invariants across D1, KV and R2 (see the module docstring), as checks.

    Raises:
        ToolFailed: wrangler failed.

    """
    spots, user_rows = d1.execute(w, DATABASE, "SELECT image_key FROM spots; SELECT id FROM users")
    referenced = {str(r["image_key"]) for r in spots}
    stored = {o.key for o in bucket.list_objects()}
    missing = sorted(k for k in referenced if k not in stored)
    users = {str(r["id"]) for r in user_rows}
    sessions = kv.list_keys("session:")
    orphans = sorted(
        s.name
        for s in sessions
        if not isinstance(s.metadata, dict) or s.metadata.get("user_id") not in users
    )
    return [
        CheckResult(
            "d1 image keys in r2",
            not missing,
            critical=True,
            detail=f"all {len(referenced)} spot images exist in R2"
            if not missing
            else f"{len(missing)} of {len(referenced)} spots reference images missing from "
            f"R2: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} (stores "
            "restored to different dates?)",
        ),
        CheckResult(
            "kv sessions of d1 users",
            not orphans,
            critical=True,
            detail=f"all {len(sessions)} sessions belong to existing users"
            if not orphans
            else f"{len(orphans)} of {len(sessions)} sessions belong to users missing from "
            f"D1: {', '.join(orphans[:3])}{' ...' if len(orphans) > 3 else ''}",
        ),
    ]


def _insert(table: str, *values: str | float, verb: str = "INSERT") -> str:
    # SQL text for wrangler's --file, which takes no bound parameters: the table is one of
    # this module's, the values are generated here, and strings are quoted (quotes doubled).
    literals = ", ".join(
        "'" + v.replace("'", "''") + "'" if isinstance(v, str) else repr(v) for v in values
    )
    return f"{verb} INTO {table} VALUES ({literals});"
