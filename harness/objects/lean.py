"""Plain HTTP for the small requests of a copy: GET and PUT of one whole object.

Copying many small objects is bound by CPU per request, not by bytes. Through boto3 one
request costs about 0.8-1 ms of Python CPU (event hooks, endpoint rules, header models,
response parsing) and, as that code holds the GIL, more threads do not make more requests
per second. GET and PUT of one object are the plainest requests S3 has (no query string, a
few headers): here they are signed with AWS Signature Version 4 (:func:`sign_v4`, the same
signature as botocore's, checked against it by the tests) and sent on one keep-alive
``http.client`` connection per thread, for about a quarter of the CPU.

Only success is handled here. Any other answer, or any transport error, returns None or
False, and the caller makes the request again through boto3, so that retries, error parsing
and the messages users see stay boto3's and :func:`harness.storage.s3.translate`'s. Only
plain-HTTP endpoints are served (the loopback and LAN stores where CPU, not the network,
bounds a copy); TLS endpoints and AWS itself always go through boto3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from harness.config import S3Target
from harness.errors import ConfigError

_META = "x-amz-meta-"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_REPLY_LIMIT = 64 << 10  # what a PUT's answer may hold (S3 sends an empty body)


def sign_v4(
    method: str,
    path: str,
    headers: dict[str, str],
    payload_sha256: str,
    *,
    host: str,
    key_id: str,
    signing_key: bytes,
    region: str,
    amz_date: str,
) -> dict[str, str]:
    """``headers`` plus Host and what signs a request without a query string for S3 (SigV4).

    Args:
        method: ``GET``, ``PUT``...
        path: the URL path as sent (already percent-encoded).
        headers: the headers to send and sign, Host aside.
        payload_sha256: hex SHA-256 of the body.
        host: ``host:port`` as the request sends it.
        key_id: the access key id.
        signing_key: from :func:`signing_key` for the date of ``amz_date``.
        region: the signing region.
        amz_date: ``YYYYMMDDTHHMMSSZ``, UTC.

    """
    signed = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    signed |= {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256}
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            path,
            "",  # no query string
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return headers | {
        "Host": host,
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_sha256,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}",
    }


def signing_key(secret: str, day: str, region: str) -> bytes:
    """The SigV4 key for S3 requests of one day (``YYYYMMDD``) in ``region``."""
    key = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@dataclass(frozen=True)
class Fetched:
    """A whole small object and what its GET said about it."""

    body: bytes
    etag: str
    content_type: str | None
    metadata: dict[str, str]


class LeanS3:
    """GET and PUT of whole objects on one plain-HTTP S3 endpoint (see the module docstring).

    Thread-safe: each thread has its own connection. Call :meth:`close` when done.
    """

    def __init__(self, target: S3Target, *, timeout: float = 60) -> None:
        """Serve ``target``, whose endpoint must be an ``http://`` URL (see :meth:`for_target`).

        Raises:
            ConfigError: the endpoint is not a plain-HTTP URL.

        """
        url = urlsplit(target.endpoint_url or "")
        if url.scheme != "http" or not url.hostname:
            raise ConfigError(f"the lean path serves plain-HTTP endpoints, not {target.display()}")
        self._host = url.hostname
        self._port = url.port or 80
        self._root = url.path.rstrip("/")
        host = f"[{self._host}]" if ":" in self._host else self._host  # IPv6 in brackets
        self._host_header = host if self._port == 80 else f"{host}:{self._port}"
        self._timeout = timeout
        self._target = target
        self._keys: dict[str, bytes] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[http.client.HTTPConnection] = []

    @classmethod
    def for_target(cls, target: S3Target) -> LeanS3 | None:
        """A lean client for ``target``; None when its requests must all go through boto3."""
        url = urlsplit(target.endpoint_url or "")
        return cls(target) if url.scheme == "http" and url.hostname else None

    def get(self, bucket: str, key: str, *, limit: int) -> Fetched | None:
        """The object ``key`` of ``bucket``, read whole if it is at most ``limit`` bytes.

        None for a bigger object, for any answer but 200 and for any transport error: boto3
        must read it.
        """
        reply = self._request("GET", bucket, key, {}, b"", _EMPTY_SHA256, limit=limit)
        if reply is None:
            return None
        response, body = reply
        return Fetched(
            body=body,
            etag=(response.getheader("ETag") or "").strip('"'),
            content_type=response.getheader("Content-Type"),
            metadata={
                name[len(_META) :]: value
                for name, value in response.getheaders()
                if name.lower().startswith(_META)
            },
        )

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        sha256: bytes,
        content_type: str | None,
        metadata: dict[str, str],
    ) -> bool:
        """Store ``body`` as ``key`` with its attributes; False when boto3 must do it.

        ``sha256`` (the digest of ``body``) goes along as the object's checksum
        (``x-amz-checksum-sha256``): a store that checks it (S3, SeaweedFS) refuses bytes
        that are not the ones hashed, so the manifest's SHA-256 is the stored object's.
        """
        headers = {_META + name: value for name, value in metadata.items()}
        headers["x-amz-checksum-sha256"] = base64.b64encode(sha256).decode()
        if content_type:
            headers["Content-Type"] = content_type
        return (
            self._request("PUT", bucket, key, headers, body, sha256.hex(), limit=_REPLY_LIMIT)
            is not None
        )

    def close(self) -> None:
        """Close every connection (of every thread)."""
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()

    def _request(
        self,
        method: str,
        bucket: str,
        key: str,
        headers: dict[str, str],
        body: bytes,
        payload: str,
        *,
        limit: int,
    ) -> tuple[http.client.HTTPResponse, bytes] | None:
        """Send one request (``payload``: the body's hex SHA-256); the answer on 200.

        The answer is the response and its body, which must be at most ``limit`` bytes.
        """
        path = quote(f"{self._root}/{bucket}/{key}", safe="/~")
        for _ in range(2):
            conn, reused = self._connection()
            try:
                conn.request(
                    method,
                    path,
                    body=body or None,
                    headers=self._sign(method, path, headers, payload),
                )
                response = conn.getresponse()
                length = int(response.getheader("Content-Length") or -1)
                if response.status != 200 or not 0 <= length <= limit:
                    self._drop(conn)  # its body unread, the connection cannot serve another
                    return None
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop(conn)
                if reused and isinstance(exc, ConnectionError):
                    continue  # the server closed an idle keep-alive connection: once more
                return None
            except ValueError:  # a header that is not Latin-1 (boto3 encodes it its way)
                self._drop(conn)
                return None
            if len(data) != length:
                self._drop(conn)
                return None
            return response, data
        return None

    def _sign(
        self, method: str, path: str, headers: dict[str, str], payload: str
    ) -> dict[str, str]:
        amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        key = self._keys.get(day)
        if key is None:
            key = self._keys[day] = signing_key(
                self._target.secret_access_key, day, self._target.region
            )
        return sign_v4(
            method,
            path,
            headers,
            payload,
            host=self._host_header,
            key_id=self._target.access_key_id,
            signing_key=key,
            region=self._target.region,
            amz_date=amz_date,
        )

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._local.conn = conn
        with self._lock:
            self._open.append(conn)
        return conn, False

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.conn = None
        with self._lock:
            if conn in self._open:
                self._open.remove(conn)
