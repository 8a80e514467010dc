from pathlib import Path

import pytest

from harness.config import (
    OPTIONS_BY_NAME,
    PROFILES,
    DrillConfig,
    KeepPolicy,
    PgTarget,
    S3Target,
    host_list,
)
from harness.errors import ConfigError


def resolve(cli=None, env=None):
    cli = cli or {}
    return DrillConfig.resolve(lambda spec: cli.get(spec.name), env or {})


def test_defaults_are_the_embedded_production_profile():
    cfg = resolve()
    assert cfg.provider == "embedded"
    assert cfg.s3_backend == "seaweedfs"
    assert cfg.targets == PROFILES["production"]
    assert cfg.targets.rto_seconds == 4 * 3600
    assert cfg.targets.rpo_seconds == 3600
    assert cfg.keep is KeepPolicy.FAILED
    assert cfg.scale == 1


def test_cli_or_ini_value_wins_over_environment_which_wins_over_default():
    env = {"DRILL_PG_VERSION": "15", "DRILL_ENVIRONMENT": "staging", "DRILL_SCALE": "3"}
    cfg = resolve({"pg_version": "17"}, env)
    assert cfg.pg_version == 17
    assert cfg.targets.environment == "staging"
    assert cfg.targets.rpo_seconds == 48 * 3600
    assert cfg.scale == 3


def test_docker_provider_defaults_to_minio_and_external_to_external_s3():
    assert resolve({"provider": "docker"}).s3_backend == "minio"
    assert resolve({"provider": "external"}).s3_backend == "external"


def test_three_spellings_per_option():
    spec = OPTIONS_BY_NAME["pg_bindir"]
    assert (spec.cli, spec.ini, spec.env) == (
        "--drill-pg-bindir",
        "drill_pg_bindir",
        "DRILL_PG_BINDIR",
    )
    assert resolve(env={"DRILL_PG_BINDIR": "/opt/pg/bin"}).pg_bindir == Path("/opt/pg/bin")


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({"provider": "kubernetes"}, "--drill-provider"),
        ({"keep": "sometimes"}, "--drill-keep"),
        ({"scale": "big"}, "whole number"),
        ({"environment": "prod"}, "unknown environment profile 'prod'"),
        ({"dsn": "postgresql://u:pw@/db"}, "names no host"),
    ],
    ids=["provider", "keep", "scale", "environment", "dsn-without-host"],
)
def test_bad_values_name_the_option(cli, message):
    with pytest.raises(ConfigError, match=message):
        resolve(cli)


def test_allow_list_is_split_and_trimmed():
    cfg = resolve({"allow_destructive": " staging-db.internal , 10.0.0.5 ,"})
    assert cfg.allow_destructive == ("staging-db.internal", "10.0.0.5")


def test_s3_credentials_come_from_the_environment():
    cfg = resolve(
        env={
            "DRILL_S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "DRILL_S3_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
        }
    )
    assert cfg.s3_access_key_id == "AKIAEXAMPLE"
    assert "wJalrXUtnFEMI" not in repr(cfg)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:s3cr3t-pw@db.example:6543/shop",
        "host=db.example port=6543 user=app password=s3cr3t-pw dbname=shop",
    ],
    ids=["url", "key-value"],
)
def test_pg_target_parses_both_dsn_forms_and_hides_the_password(dsn):
    target = PgTarget.from_dsn(dsn)
    assert (target.host, target.port, target.user, target.dbname) == (
        "db.example",
        6543,
        "app",
        "shop",
    )
    assert target.password == "s3cr3t-pw"
    assert "s3cr3t-pw" not in repr(target)
    assert "s3cr3t-pw" not in target.display()
    assert target.libpq_env()["PGPASSWORD"] == "s3cr3t-pw"
    assert target.destructive_ok is False


def test_pg_target_with_dbname_keeps_credentials():
    target = PgTarget.from_dsn("postgresql://app:pw-1234@h:5432/a").with_dbname("b")
    assert (target.dbname, target.password) == ("b", "pw-1234")


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("host=x password=hunter2-secret bogus", "cannot parse the DSN"),
        ("postgresql://u:hunter2-secret@h:notaport/db", "non-numeric port"),
    ],
    ids=["syntax", "port"],
)
def test_bad_dsn_is_a_config_error_without_the_password(dsn, message):
    with pytest.raises(ConfigError, match=message) as info:
        PgTarget.from_dsn(dsn)
    assert "hunter2-secret" not in str(info.value)


def test_s3_target_repr_and_display_hide_the_secret():
    target = S3Target("http://127.0.0.1:9000", "AKIAEXAMPLE", "super-secret-key-value")
    assert "super-secret-key-value" not in repr(target)
    assert "super-secret-key-value" not in target.display()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("4h", 14400), ("1d", 86400), ("1w", 604800), ("12", 12)],
)
def test_durations(text, seconds):
    from harness.config import parse_duration

    assert parse_duration(text) == seconds


def test_bad_duration_says_how_to_write_one():
    from harness.config import parse_duration

    with pytest.raises(ConfigError, match=r"write e\.g\. 90s, 30m, 4h"):
        parse_duration("soon")


def test_pyproject_profiles_and_options_override_targets(tmp_path):
    from harness.config import load_profiles

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.drill.environments.production]\nrpo = "15m"\n'
        '[tool.drill.environments.dr-site]\nrto = "2h"\nrpo = "5m"\n'
    )
    profiles = load_profiles(pyproject)
    assert profiles["production"].rto_seconds == 4 * 3600  # kept from the defaults
    assert profiles["production"].rpo_seconds == 900
    assert profiles["staging"] == PROFILES["staging"]
    cfg = DrillConfig.resolve(
        lambda spec: {"environment": "dr-site"}.get(spec.name), {}, profiles=profiles
    )
    assert (cfg.targets.rto_seconds, cfg.targets.rpo_seconds) == (7200, 300)
    cfg = DrillConfig.resolve(lambda spec: {"rto": "30m"}.get(spec.name), {}, profiles=profiles)
    assert (cfg.targets.rto_seconds, cfg.targets.rpo_seconds) == (1800, 900)


def test_host_list_is_what_the_cli_and_the_plugin_both_read():
    assert host_list(" a.internal, ,10.0.0.5,") == ("a.internal", "10.0.0.5")
    assert host_list(None) == ()


def test_external_s3_target_needs_keys_and_is_destructive_only_when_allow_listed():
    with pytest.raises(ConfigError, match="DRILL_S3_ACCESS_KEY_ID"):
        resolve({"s3_endpoint": "http://s3.internal:9000"}).external_s3_target()
    keys = {"DRILL_S3_ACCESS_KEY_ID": "AKIA1", "DRILL_S3_SECRET_ACCESS_KEY": "secret-s3-99"}
    plain = resolve({"s3_endpoint": "http://s3.internal:9000"}, keys).external_s3_target()
    assert plain.endpoint_url == "http://s3.internal:9000"
    assert not plain.destructive_ok
    allowed = resolve(
        {"s3_endpoint": "http://s3.internal:9000", "allow_destructive": "s3.internal"}, keys
    ).external_s3_target()
    assert allowed.destructive_ok
    assert "secret-s3-99" not in repr(allowed)
