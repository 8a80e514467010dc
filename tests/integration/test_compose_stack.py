"""Drills against a team's own compose stack (PostgreSQL and MinIO services).

Needs a Docker engine that can pull images: CI with Docker runs it; elsewhere it skips with
the reason. Without an engine the provider itself refuses with a clear message.
"""

from pathlib import Path

import pytest

from harness.infra.providers.docker import docker_engine_problem

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

ENGINE = docker_engine_problem()

COMPOSE = """
services:
  db:
    image: postgres:17
    environment:
      POSTGRES_PASSWORD: ${PG_PASSWORD}
    ports: ["5432"]
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "postgres"]
      interval: 1s
      retries: 60
  minio:
    image: minio/minio
    command: server /data
    environment:
      MINIO_ROOT_USER: drill
      MINIO_ROOT_PASSWORD: ${S3_PASSWORD}
    ports: ["9000"]
"""

DRILL = """
import pytest
from harness import parse_location, take_backup, count_rows, create_database, run_sql_file

def test_backup_from_the_stack(pg_source, object_store, drill_fixtures):
    app = pg_source.target("app")
    create_database(app, app.dbname)
    run_sql_file(app, drill_fixtures / "smoke.sql")
    location = parse_location(f"s3://{object_store.bucket}/s", s3=object_store.target)
    backup = take_backup(app, location)
    assert count_rows(app, "public", "items") == 1000
    assert backup.manifest.artifacts
"""


def test_without_an_engine_the_provider_says_so(pytester, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    (pytester.path / "docker-compose.yml").write_text(COMPOSE)
    pytester.makepyfile("def test_drill(pg_source):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--drill-provider=compose", "--drill-compose-file=docker-compose.yml"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--drill-provider=compose needs a Docker engine*"])


@pytest.mark.docker
@pytest.mark.skipif(ENGINE is not None, reason=f"needs a Docker engine: {ENGINE}")
def test_a_drill_runs_against_the_services_of_a_compose_file(pytester):
    pytester.path.joinpath("docker-compose.yml").write_text(COMPOSE)
    pytester.path.joinpath(".env").write_text(
        "PG_PASSWORD=compose-pg-pw-1\nS3_PASSWORD=compose-s3-pw-1\n"
    )
    pytester.makepyfile(test_stack=DRILL)
    (pytester.path / "fixtures").symlink_to(FIXTURES, target_is_directory=True)
    result = pytester.runpytest_subprocess(
        "--drill-provider=compose",
        "--drill-compose-file=docker-compose.yml",
        "--drill-compose-s3-service=minio",
    )
    result.assert_outcomes(passed=1)
