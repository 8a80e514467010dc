"""No output of a drill session holds a secret: HTML, JSON, JUnit XML, logs, history, terminal.

The session drills against a staging server reached through a DSN with a known password,
backs up to the user's S3 endpoint with a known secret key, and has known secrets in its
environment. Its drills then do what careless code does: print every secret, log it through
a third-party logger, put it in a fact, a parameter and a phase detail, and fail with it in
the assertion message.
"""

import json

import pytest
from inner import drills_project, run_pytest

from harness.config import DrillConfig
from harness.infra.providers import EmbeddedProvider
from harness.infra.s3.moto import MotoServer
from harness.pg.sql import connect

DSN_PASSWORD = "Dsn-Pw-4f8a1c9e77"
S3_SECRET = "S3-Secret-9c2e5b7d13"
ENV_SECRETS = {
    "GITHUB_TOKEN": "ghp-Env-Token-3b8d0a6f",
    "MY_SERVICE_API_KEY": "Env-Api-Key-71e4c2aa",
    "AWS_SESSION_TOKEN": "Env-Session-5d9f0b31",
}
SECRETS = [DSN_PASSWORD, S3_SECRET, *ENV_SECRETS.values()]

LEAKY_DRILLS = """
import logging
import os
import sys

import pytest
from psycopg import sql

from harness import detect, disasters, parse_location, restore_table, scenario

pytestmark = pytest.mark.drill
LEAK = " | ".join(
    [os.environ["DRILL_DSN"], os.environ["DRILL_S3_SECRET_ACCESS_KEY"]]
    + [os.environ[k] for k in ("GITHUB_TOKEN", "MY_SERVICE_API_KEY", "AWS_SESSION_TOKEN")]
)


def _careless(drill_run, drill_record):
    print("stdout:", LEAK)
    print("stderr:", LEAK, file=sys.stderr)
    logging.getLogger("some.library").warning("connecting with %s", LEAK)
    drill_record.add("careless note", LEAK)
    drill_run.facts["careless fact"] = LEAK
    drill_run.parameters["careless parameter"] = LEAK


METHODS = [pytest.param({"fmt": "custom", "jobs": 1}, id="logical-custom")]


@pytest.mark.parametrize("method", METHODS)
def test_truncate_on_staging(pg_server_factory, object_store, lesson_app, drill_run,
                             drill_workdir, drill_record, method):
    app = scenario.seed(drill_run, pg_server_factory("live"), lesson_app)
    location = parse_location(f"s3://{object_store.bucket}/sets/nightly", s3=object_store.target)
    with scenario.live_writes(drill_run, app) as writes:
        scenario.back_up(drill_run, app, location, writes=writes, **method)
    before, rls_before = scenario.before_disaster(app)
    with drill_run.phase("disaster", f"TRUNCATE public.messages ({LEAK})"):
        disasters.run_statement(app, sql.SQL("TRUNCATE public.messages"))
    with drill_run.phase("detect"):
        found = detect(before, app)
    with drill_run.phase("restore", "missing rows of each damaged table"):
        for table in found.damaged_tables:
            restore_table(location, app, table, workdir=drill_workdir, missing_only=True)
    scenario.verify_in_place(drill_run, app, before, rls_before)
    scenario.record_rpo(drill_run, writes, app)
    _careless(drill_run, drill_record)
    assert drill_run.passed, drill_run.failures()


def test_careless_failure(drill_run, drill_record):
    _careless(drill_run, drill_record)
    with drill_run.phase("disaster", LEAK):
        pass
    raise AssertionError(f"could not reach {LEAK}")
"""


@pytest.fixture
def staging(tmp_path):
    """A throwaway server playing the team's staging server, with a known password."""
    provider = EmbeddedProvider(DrillConfig(s3_backend="moto"), base_dir=tmp_path / "staging")
    try:
        target = provider.pg_server(name="staging").target()
        with connect(target) as conn:
            conn.execute(f"CREATE ROLE drill_admin LOGIN SUPERUSER PASSWORD '{DSN_PASSWORD}'")
        yield target
    finally:
        provider.close()


def _spellings(secret):
    return {secret, json.dumps(secret)[1:-1]}


def test_no_output_of_a_drill_session_holds_a_secret(tmp_path, staging):
    project = drills_project(tmp_path / "project", LEAKY_DRILLS)
    with MotoServer() as users_s3:
        env = {
            "DRILL_DSN": f"postgresql://drill_admin:{DSN_PASSWORD}@{staging.host}:{staging.port}/postgres",
            "DRILL_S3_ACCESS_KEY_ID": "AKIDSTAGINGUSER",
            "DRILL_S3_SECRET_ACCESS_KEY": S3_SECRET,
            **ENV_SECRETS,
        }
        code, output = run_pytest(
            project,
            "drills",
            "-p",
            "no:cacheprovider",
            "--drill-provider=external",
            f"--drill-allow-destructive={staging.host}",
            "--drill-s3=external",
            f"--drill-s3-endpoint={users_s3.endpoint_url}",
            env=env,
        )
    assert code == 1, output
    assert "1 failed, 1 passed" in output, output
    outputs = sorted(p for p in (project / "reports").rglob("*") if p.is_file())
    names = {p.name for p in outputs}
    assert {"report.html", "junit.xml", "drills.log", "index.json", "history.jsonl"} <= names
    assert sum(p.suffix == ".json" and p.parent.name == "evidence" for p in outputs) == 2
    texts = {str(p): p.read_text(encoding="utf-8") for p in outputs}
    texts["terminal"] = output
    # The leaks were attempted and reached every output, masked.
    assert "********" in (project / "reports" / "latest" / "drills.log").read_text()
    assert "careless note" in (project / "reports" / "latest" / "report.html").read_text()
    for where, text in texts.items():
        for secret in SECRETS:
            for spelling in _spellings(secret):
                assert spelling not in text, f"{where} holds a secret"
