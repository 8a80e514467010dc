"""Drills on systems the whole suite shares: an external PostgreSQL server, the user's S3.

Each drill must work in databases and buckets named for it and the run, and leave nothing
behind, whatever its outcome; its evidence must match the published schema.
"""

import json
from pathlib import Path

import jsonschema
import pytest

from harness.config import DrillConfig
from harness.infra.naming import bucket_name_problem
from harness.infra.providers import EmbeddedProvider
from harness.infra.s3.moto import MotoServer
from harness.pg.sql import connect

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "drill-evidence.schema.json").read_text())

# Several scenarios, one of them twice (two backup methods), drills that create a database
# by name, and two that need a server of their own: skipped, one of them only after it had
# loaded and backed up its database (which must go all the same).
SUITE = [
    "drills/test_partial_corruption.py::test_partial_corruption",
    "drills/test_accidental_deletion.py::test_accidental_deletion[logical-custom-truncate]",
    "drills/test_ransomware_attack.py::test_ransomware_attack[logical-custom]",
    "drills/test_smoke.py",
    "drills/test_complete_data_loss.py::test_complete_data_loss[logical-custom]",
    "drills/test_pitr.py::test_complete_data_loss_pitr[physical-streaming]",
]


@pytest.fixture
def staging(tmp_path):
    """A throwaway server playing the user's staging server."""
    provider = EmbeddedProvider(DrillConfig(s3_backend="moto"), base_dir=tmp_path / "staging")
    try:
        yield provider.pg_server(name="staging").target()
    finally:
        provider.close()


def _databases(target):
    with connect(target) as conn:
        return sorted(r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall())


def test_drills_run_as_a_suite_against_one_external_server(pytester, monkeypatch, staging):
    dsn = f"postgresql://{staging.user}:{staging.password}@{staging.host}:{staging.port}/postgres"
    monkeypatch.setenv("DRILL_DSN", dsn)  # the password stays off the command line
    evidence = pytester.path / "evidence"
    before = _databases(staging)

    result = pytester.runpytest_subprocess(
        *(str(ROOT / node) for node in SUITE),
        f"--rootdir={ROOT}",
        "-p",
        "no:cacheprovider",
        "-rs",
        "--drill-provider=external",
        f"--drill-allow-destructive={staging.host}",
        "--drill-s3=moto",
        f"--drill-evidence-dir={evidence}",
        f"--junitxml={pytester.path / 'junit.xml'}",
    )

    result.assert_outcomes(passed=6, skipped=2)
    for reason in (
        "*SKIPPED*not with the external provider: *data directory is not on this machine*",
        "*SKIPPED*only the embedded provider can run it*",
    ):
        result.stdout.fnmatch_lines([reason])
    assert _databases(staging) == before, "a drill left a database behind"
    records = sorted(evidence.glob("*.json"))
    assert len(records) == 4  # the smoke drill records no run
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for path in records:
        validator.validate(json.loads(path.read_text()))
    outputs = [p.read_text() for p in records] + [
        (pytester.path / "junit.xml").read_text(),
        "\n".join(result.outlines + result.errlines),
    ]
    assert not any(staging.password in text for text in outputs)


INNER_BUCKETS = """
import json, os
from datetime import UTC, datetime, timedelta
from pathlib import Path

def test_buckets(object_store_factory):
    plain = object_store_factory()
    locked = object_store_factory(object_lock=True)
    plain.put_bytes("k", b"v")
    locked.client.put_object(
        Bucket=locked.bucket, Key="k", Body=b"v", ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=1),
        ChecksumAlgorithm="SHA256",
    )
    regions = [s.client.get_bucket_location(Bucket=s.bucket)["LocationConstraint"]
               for s in (plain, locked)]
    out = Path(os.environ["DRILL_TEST_OUT"])
    out.write_text(json.dumps({"plain": plain.bucket, "locked": locked.bucket,
                               "regions": regions}))

def test_fails_after_making_a_bucket(object_store):
    object_store.put_bytes("k", b"v")
    Path(os.environ["DRILL_TEST_OUT"] + ".failed").write_text(object_store.bucket)
    assert False, "deliberate failure"
"""


def test_buckets_on_the_users_endpoint_are_regional_unique_per_run_and_removed(
    pytester, monkeypatch
):
    pytester.makepyfile(test_inner=INNER_BUCKETS)
    monkeypatch.setenv("DRILL_S3_ACCESS_KEY_ID", "AKIDUSERENDPOINT")
    monkeypatch.setenv("DRILL_S3_SECRET_ACCESS_KEY", "user-endpoint-secret-1")
    with MotoServer() as users_s3:
        runs = []
        for run in range(2):  # a second nightly run must not meet the first one's names
            out = pytester.path / f"run{run}.json"
            monkeypatch.setenv("DRILL_TEST_OUT", str(out))
            result = pytester.runpytest_subprocess(
                "-p",
                "no:cacheprovider",
                "--drill-s3=external",
                f"--drill-s3-endpoint={users_s3.endpoint_url}",
                "--drill-s3-region=eu-west-1",
            )
            result.assert_outcomes(passed=1, failed=1)
            runs.append(
                {**json.loads(out.read_text()), "failed": Path(f"{out}.failed").read_text()}
            )
        client = users_s3_client(users_s3)
        left = {b["Name"] for b in client.list_buckets()["Buckets"]}

    names = [r[k] for r in runs for k in ("plain", "locked", "failed")]
    assert len(set(names)) == len(names)
    assert all(bucket_name_problem(n) is None for n in names)
    assert all(r["regions"] == ["eu-west-1", "eu-west-1"] for r in runs)
    # Removed after passing and failing drills alike; a COMPLIANCE-locked one cannot be.
    # (moto keeps buckets per process: other tests' buckets may be listed too.)
    assert left & set(names) == {r["locked"] for r in runs}


def users_s3_client(server):
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="AKIDUSERENDPOINT",
        aws_secret_access_key="user-endpoint-secret-1",
        region_name="eu-west-1",
    )


INNER_UNSUPPORTED = """
from harness.errors import UnsupportedByProvider

def test_needs_a_local_data_directory(pg_source, drill_run):
    with drill_run.phase("seed"):
        pass
    raise UnsupportedByProvider("this server's data directory is not on this machine")
"""


def test_a_drill_its_provider_cannot_serve_is_skipped_without_evidence(pytester):
    pytester.makepyfile(test_inner=INNER_UNSUPPORTED)
    evidence = pytester.path / "evidence"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs", "--drill-s3=moto", f"--drill-evidence-dir={evidence}"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*SKIPPED*not with the embedded provider: *data directory is not on this machine*"]
    )
    assert not list(evidence.glob("*.json")), "a drill that could not run proves nothing"
