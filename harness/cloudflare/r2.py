"""R2 buckets: listed, read and written in bulk, locally (the bridge) or on an account (S3 API).

:class:`R2Bucket` is what object backups of R2 need: a listing with ETag, content type and
custom metadata, and whole-object transfers to and from local files. Two implementations:

- :class:`BridgeBucket`: a local bucket in a wrangler project's state, through the loopback
  Worker of :mod:`harness.cloudflare.bridge` (one ``wrangler dev`` for the whole transfer);
- :class:`S3ApiBucket`: a bucket on a Cloudflare account through R2's S3-compatible API
  (``https://<account id>.r2.cloudflarestorage.com``, R2 access keys from the environment),
  the bulk interface R2 offers; wrangler has no listing.

Backups and restores (:mod:`harness.cloudflare.r2_sets`) speak to either one.
"""

from __future__ import annotations

import builtins
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from harness.cloudflare.bridge import Bridge
from harness.cloudflare.wrangler import ACCOUNT_ENV
from harness.config import S3Target
from harness.errors import ConfigError
from harness.objects.bucket import Bucket, etag_of
from harness.storage.s3 import translate

ACCESS_KEY_ENV = "R2_ACCESS_KEY_ID"
SECRET_KEY_ENV = "R2_SECRET_ACCESS_KEY"  # noqa: S105 - the variable's name, not a secret
_CHUNK = 1 << 20


@dataclass(frozen=True)
class R2Object:
    """One object as a listing reports it."""

    key: str
    size: int
    etag: str
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


class R2Bucket(Protocol):
    """An R2 bucket as backups see it (errors: :class:`~harness.errors.StorageError`)."""

    @property
    def location(self) -> str:
        """Printable: the bucket and where it lives."""
        ...

    def list_objects(self) -> list[R2Object]:
        """Every object, sorted by key."""
        ...

    def download(self, key: str, dest: Path) -> R2Object:
        """Write ``key``'s bytes to ``dest``; what the bucket says about it."""
        ...

    def upload(
        self, key: str, source: Path, *, content_type: str | None, metadata: dict[str, str]
    ) -> None:
        """Store ``source``'s bytes as ``key`` with its content type and custom metadata."""
        ...

    def delete_many(self, keys: builtins.list[str]) -> None:
        """Delete every key (absent keys are fine)."""
        ...


class BridgeBucket:
    """A local bucket through a running :class:`Bridge`."""

    def __init__(self, bridge: Bridge, name: str) -> None:
        """Name the bucket (the bridge must have been opened with it).

        Raises:
            ConfigError: the bridge does not hold it.

        """
        self._bridge = bridge
        self._binding = bridge.binding(name)
        self.name = name

    @property
    def location(self) -> str:
        """Printable: the bucket and where it lives."""
        return f"r2://{self.name} (local)"

    def list_objects(self) -> list[R2Object]:
        """Every object, sorted by key (1,000 a request)."""
        found: list[R2Object] = []
        cursor: str | None = None
        while True:
            with self._bridge.request("GET", f"/r2/{self._binding}/list", cursor=cursor) as r:
                page = json.loads(r.read())
            found += [
                R2Object(
                    str(o["key"]),
                    int(o["size"]),
                    str(o["etag"]),
                    o.get("content_type") or None,
                    {str(k): str(v) for k, v in (o.get("metadata") or {}).items()},
                )
                for o in page["objects"]
            ]
            cursor = page.get("cursor")
            if not cursor:
                return sorted(found, key=lambda o: o.key)

    def download(self, key: str, dest: Path) -> R2Object:
        """Write ``key``'s bytes to ``dest`` (streamed).

        Raises:
            ObjectNotFound: no such key.

        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with self._bridge.request("GET", f"/r2/{self._binding}/object", key=key) as r:
            with dest.open("wb") as out:
                while chunk := r.read(_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            meta = json.loads(r.headers.get("x-bridge-meta") or "{}")
            return R2Object(
                key,
                size,
                r.headers.get("x-bridge-etag") or "",
                r.headers.get("x-bridge-content-type") or None,
                {str(k): str(v) for k, v in meta.items()},
            )

    def upload(
        self, key: str, source: Path, *, content_type: str | None, metadata: dict[str, str]
    ) -> None:
        """Store ``source`` as ``key`` (streamed)."""
        headers = {"x-bridge-meta": json.dumps(metadata)}
        if content_type:
            headers["x-bridge-content-type"] = content_type
        with (
            source.open("rb") as body,
            self._bridge.request(
                "PUT",
                f"/r2/{self._binding}/object",
                key=key,
                body=body,
                headers=headers,
                length=source.stat().st_size,
            ) as r,
        ):
            r.read()

    def delete_many(self, keys: builtins.list[str]) -> None:
        """Delete every key in one request."""
        body = json.dumps(keys).encode()
        with self._bridge.request("POST", f"/r2/{self._binding}/delete", body=body) as r:
            r.read()


class S3ApiBucket:
    """A bucket on a Cloudflare account through R2's S3-compatible API."""

    def __init__(self, bucket: Bucket) -> None:
        """Wrap a :class:`harness.objects.bucket.Bucket` aimed at the R2 endpoint."""
        self._bucket = bucket

    @classmethod
    def from_environment(cls, name: str, *, allow_delete: bool = False) -> S3ApiBucket:
        """Bucket ``name`` of the account in ``CLOUDFLARE_ACCOUNT_ID``, keys from R2_* variables.

        Raises:
            ConfigError: a variable is missing.

        """
        account = os.environ.get(ACCOUNT_ENV, "")
        key_id = os.environ.get(ACCESS_KEY_ENV, "")
        secret = os.environ.get(SECRET_KEY_ENV, "")
        missing = [
            n
            for n, v in ((ACCOUNT_ENV, account), (ACCESS_KEY_ENV, key_id), (SECRET_KEY_ENV, secret))
            if not v
        ]
        if missing:
            raise ConfigError(
                f"remote R2 goes through its S3 API: set {', '.join(missing)} (an R2 API token's "
                "access key pair, from the dashboard's R2 > Manage API tokens)"
            )
        target = S3Target(
            endpoint_url=f"https://{account}.r2.cloudflarestorage.com",
            access_key_id=key_id,
            secret_access_key=secret,
            region="auto",
            destructive_ok=allow_delete,
        )
        return cls(Bucket(target, name))

    @property
    def location(self) -> str:
        """Printable: the bucket and its endpoint."""
        return self._bucket.where

    def list_objects(self) -> list[R2Object]:
        """Every object (paginated), sorted by key; metadata comes with each download."""
        return [R2Object(o.key, o.size, o.etag) for o in self._bucket.list()]

    def download(self, key: str, dest: Path) -> R2Object:
        """Write ``key``'s bytes to ``dest`` (streamed)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        response = self._bucket.get(key)
        size = 0
        with dest.open("wb") as out:
            body = response["Body"]
            while chunk := body.read(_CHUNK):
                out.write(chunk)
                size += len(chunk)
        meta = response.get("Metadata") or {}
        return R2Object(key, size, etag_of(response), response.get("ContentType"), dict(meta))

    def upload(
        self, key: str, source: Path, *, content_type: str | None, metadata: dict[str, str]
    ) -> None:
        """Store ``source`` as ``key``."""
        extra: dict[str, object] = {"Metadata": metadata}
        if content_type:
            extra["ContentType"] = content_type
        try:
            self._bucket.client.upload_file(
                str(source), self._bucket.name, self._bucket.full_key(key), ExtraArgs=extra
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self._bucket.target, f"put {self._bucket.uri}/{key}") from exc

    def delete_many(self, keys: builtins.list[str]) -> None:
        """Delete every key (refused unless the bucket was opened with ``allow_delete``)."""
        for key in keys:
            self._bucket.delete(key)
