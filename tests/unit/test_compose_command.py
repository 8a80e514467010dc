"""The compose provider's command assembly and how it reads a resolved compose configuration."""

from pathlib import Path

import pytest

from harness.config import DrillConfig
from harness.errors import ConfigError
from harness.infra.providers.compose import (
    ComposeCommand,
    compose_command,
    parse_port,
    pg_credentials,
    s3_credentials,
)
from harness.redact import redact

COMMAND = ComposeCommand(
    (Path("stack/docker-compose.yml"), Path("stack/docker-compose.s3.yml")),
    "drill-1a2b3c4d",
    env_file=Path("stack/.env"),
)
BASE = [
    "docker", "compose", "--project-name", "drill-1a2b3c4d",
    "--file", "stack/docker-compose.yml", "--file", "stack/docker-compose.s3.yml",
    "--env-file", "stack/.env",
]  # fmt: skip


def test_up_starts_everything_detached_and_waits_for_health():
    assert COMMAND.up() == [*BASE, "up", "--detach", "--wait", "--wait-timeout", "300"]
    assert COMMAND.up(("db",), timeout=60)[-3:] == ["--wait-timeout", "60", "db"]


def test_config_port_and_down():
    assert COMMAND.config() == [*BASE, "config", "--format", "json"]
    assert COMMAND.port("db", 5432) == [*BASE, "port", "db", "5432"]
    assert COMMAND.down() == [*BASE, "down", "--remove-orphans", "--timeout", "10", "--volumes"]
    assert "--volumes" not in COMMAND.down(volumes=False)


def test_the_standalone_binary_and_no_env_file():
    command = ComposeCommand((Path("c.yml"),), "p", executable=("docker-compose",))
    assert command.base() == ["docker-compose", "--project-name", "p", "--file", "c.yml"]


@pytest.mark.parametrize(
    ("output", "address"),
    [
        ("0.0.0.0:54322\n", ("127.0.0.1", 54322)),
        ("[::]:54322\n", ("127.0.0.1", 54322)),
        ("127.0.0.1:6543\n", ("127.0.0.1", 6543)),
        ("0.0.0.0:5432\n[::]:5432\n", ("127.0.0.1", 5432)),
    ],
)
def test_published_ports_are_read_as_loopback_addresses(output, address):
    assert parse_port(output, service="db") == address


def test_an_unpublished_port_names_the_service_and_the_fix():
    with pytest.raises(ConfigError, match=r"service 'db' publishes no port .*add ports:"):
        parse_port(":0\n", service="db")


SUPABASE_LIKE = {
    "services": {
        "db": {
            "image": "supabase/postgres:15.8.1.060",
            "environment": {
                "POSTGRES_PASSWORD": "compose-pg-secret-1",
                "POSTGRES_DB": "postgres",
                "PGPORT": "5432",
            },
        },
        "minio": {"environment": ["MINIO_ROOT_USER=supa", "MINIO_ROOT_PASSWORD=compose-s3-secret"]},
        "kong": {"environment": None},
    }
}


def test_credentials_come_from_the_resolved_configuration_and_are_registered():
    assert pg_credentials(SUPABASE_LIKE, "db") == ("postgres", "compose-pg-secret-1", "postgres")
    assert s3_credentials(SUPABASE_LIKE, "minio") == ("supa", "compose-s3-secret")
    assert "compose-pg-secret-1" not in redact("password compose-pg-secret-1")
    assert "compose-s3-secret" not in redact("key compose-s3-secret")


def test_a_missing_service_lists_the_ones_there_are():
    with pytest.raises(ConfigError, match=r"no service 'postgres' \(it has: db, kong, minio\)"):
        pg_credentials(SUPABASE_LIKE, "postgres")


def test_a_service_without_a_password_is_refused_by_name():
    with pytest.raises(ConfigError, match="'kong' sets no POSTGRES_PASSWORD"):
        pg_credentials(SUPABASE_LIKE, "kong")


def test_the_compose_file_is_required_and_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="needs your compose file: pass --drill-compose-file"):
        compose_command(DrillConfig(provider="compose"), project="p")
    with pytest.raises(ConfigError, match=r"compose file not found: .*nope\.yml"):
        compose_command(
            DrillConfig(provider="compose", compose_file=str(tmp_path / "nope.yml")), project="p"
        )


def test_files_are_merged_in_order_and_the_env_file_beside_the_first_is_used(tmp_path):
    for name in ("docker-compose.yml", "override.yml", ".env"):
        (tmp_path / name).write_text("")
    files = f"{tmp_path / 'docker-compose.yml'}, {tmp_path / 'override.yml'}"
    command = compose_command(DrillConfig(provider="compose", compose_file=files), project="p")
    assert command.files == (tmp_path / "docker-compose.yml", tmp_path / "override.yml")
    assert command.env_file == tmp_path / ".env"


def test_the_options_resolve_in_three_spellings():
    config = DrillConfig.resolve(
        lambda spec: {"provider": "compose", "compose_file": "dc.yml"}.get(spec.name),
        environ={"DRILL_COMPOSE_S3_SERVICE": "minio"},
    )
    assert (config.provider, config.compose_file) == ("compose", "dc.yml")
    assert (config.compose_pg_service, config.compose_s3_service) == ("db", "minio")
    assert config.s3_backend == "seaweedfs"
