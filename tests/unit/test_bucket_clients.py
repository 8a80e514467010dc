"""Bucket clients and the lean path without a server: dates, endpoints, imports, memory."""

import hashlib
import io
import sys
from datetime import UTC, datetime

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import parse_timestamp

from harness.config import S3Target
from harness.objects.bucket import parse_date
from harness.objects.hashing import HashingReader, fill
from harness.objects.lean import LeanS3, sign_v4, signing_key
from harness.proc import run


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25T22:16:58.123Z",
        "2026-11-25T22:16:58Z",
        "2026-11-25T22:16:58+02:00",
        "2026-11-25T22:16:58.123456789Z",
        "Wed, 25 Nov 2026 22:16:58 GMT",
        "2026-11-25T22:16:58",
        "1700000000",
    ],
)
def test_dates_parse_as_botocore_parses_them(text):
    assert parse_date(text) == parse_timestamp(text)


def test_a_listing_date_is_aware_utc():
    assert parse_date("2026-11-25T22:16:58Z") == datetime(2026, 11, 25, 22, 16, 58, tzinfo=UTC)


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "region"),
    [
        ("GET", "/bucket/photos/img-00001.jpg", {}, b"", "us-east-1"),
        (
            "PUT",
            "/bucket/dir/%C3%BC%20x%2By.txt",
            {"Content-Type": "text/plain", "x-amz-meta-Owner": "  user   1 ", "x-amz-meta-n": ""},
            b"hello",
            "eu-central-1",
        ),
        ("PUT", "/root/bucket/empty", {}, b"", "auto"),
    ],
    ids=["get", "put-with-metadata", "empty-put"],
)
def test_signatures_are_botocores(method, path, headers, body, region):
    amz_date, host = "20261125T221658Z", "127.0.0.1:8333"
    payload = hashlib.sha256(body).hexdigest()
    ours = sign_v4(
        method,
        path,
        headers,
        payload,
        host=host,
        key_id="AKIDEXAMPLE",
        signing_key=signing_key("wJalrXUtnFEMI/K7MDENG", amz_date[:8], region),
        region=region,
        amz_date=amz_date,
    )
    request = AWSRequest(
        method=method,
        url=f"http://{host}{path}",
        headers={**headers, "X-Amz-Date": amz_date, "X-Amz-Content-SHA256": payload},
        data=body,
    )
    request.context["timestamp"] = amz_date
    auth = S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG"), "s3", region)
    signature = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    assert ours["Authorization"].endswith(f", Signature={signature}")
    assert ours["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/{region}/s3/aws4_request, "
    )
    assert ours["Host"] == host


@pytest.mark.parametrize(
    ("endpoint", "served"),
    [
        ("http://127.0.0.1:8333", True),
        ("http://minio.lan", True),
        ("https://127.0.0.1:8333", False),
        (None, False),
    ],
)
def test_only_plain_http_endpoints_take_the_lean_path(endpoint, served):
    lean = LeanS3.for_target(S3Target(endpoint, "key-id", "secret-key-123"))
    assert (lean is not None) == served


def _python(code):
    return run([sys.executable, "-c", code], timeout=120).stdout


def test_object_backups_load_neither_postgresql_client_libraries_nor_pydantic():
    # psycopg and pydantic are ~20 and ~7 MiB; a backup that reads no manifest needs neither.
    out = _python(
        "import sys, harness.objects.backup, harness.objects.restore\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'psycopg', 'pydantic'}))"
    )
    assert out.strip() == "[]"


def test_bucket_clients_share_one_loaded_s3_model():
    # A session loads the S3 model (about 12 MiB); clients of one session share it.
    out = _python(
        "from harness.config import S3Target\n"
        "from harness.objects.bucket import Bucket\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "t = S3Target('http://127.0.0.1:9', 'key-id', 'secret-key-123')\n"
        "first = Bucket(t, 'a')\n"
        "before = rss()\n"
        "more = [Bucket(t, f'b{i}') for i in range(4)]\n"
        "print(rss() - before)"
    )
    assert float(out) < 8, f"four more bucket clients took {float(out):.1f} MiB"


def test_parts_are_filled_in_place_and_every_byte_is_hashed():
    data = bytes(range(256)) * 4097  # 1 MiB and 256 bytes: three full parts, one short
    reader = HashingReader(io.BytesIO(data))
    buffer = bytearray(300_000)
    parts = []
    while filled := fill(reader, buffer):
        if filled < len(buffer):
            del buffer[filled:]  # the buffer is not exported any more: it can shrink
        parts.append(bytes(buffer))
    assert [len(p) for p in parts] == [300_000] * 3 + [len(data) - 900_000]
    assert b"".join(parts) == data
    assert (reader.hexdigest(), reader.size) == (hashlib.sha256(data).hexdigest(), len(data))
