import pytest

from harness.config import DrillConfig
from harness.errors import ConfigError, ProviderUnavailable, UnsafeTargetError
from harness.infra.providers import (
    DockerProvider,
    EmbeddedProvider,
    ExternalProvider,
    make_provider,
)
from harness.infra.providers.docker import docker_engine_problem
from harness.pg.sql import create_database, database_exists, drop_database


def config(**values):
    return DrillConfig.resolve(lambda spec: values.get(spec.name), {})


@pytest.fixture
def embedded(tmp_path):
    provider = EmbeddedProvider(config(s3="moto"), base_dir=tmp_path / "infra")
    yield provider
    provider.close()


def test_embedded_provider_hands_out_servers_and_cleans_up(embedded, tmp_path):
    source = embedded.pg_server(name="source")
    target = embedded.pg_server(name="target")
    assert source.port != target.port
    pid = source.pid
    embedded.release(source, keep=False)
    assert not source.workdir.exists()
    embedded.close()
    assert not target.running
    assert not (tmp_path / "infra").exists()
    from harness.proc import pid_alive

    assert not pid_alive(pid)


def test_kept_server_directory_survives_release(embedded):
    server = embedded.pg_server(name="kept")
    embedded.release(server, keep=True)
    assert not server.running
    assert (server.datadir / "PG_VERSION").is_file()
    assert server.log_path.is_file()


def test_external_provider_without_dsn_says_what_to_pass():
    with pytest.raises(ConfigError, match="--drill-dsn"):
        make_provider(config(provider="external"), base_dir=None)


def test_external_target_refuses_destruction_unless_allow_listed(embedded):
    throwaway = embedded.pg_server(name="ext")
    t = throwaway.target()
    dsn = f"postgresql://{t.user}:{t.password}@{t.host}:{t.port}/postgres"
    create_database(t, "precious")

    external = ExternalProvider(config(provider="external", dsn=dsn))
    server = external.pg_server(name="source")
    with pytest.raises(UnsafeTargetError, match=r"--drill-allow-destructive=127\.0\.0\.1"):
        drop_database(server.target(), "precious")
    assert database_exists(t, "precious"), "the refusal must come before any change"

    allowed = ExternalProvider(config(provider="external", dsn=dsn, allow_destructive="127.0.0.1"))
    drop_database(allowed.pg_server(name="source").target(), "precious")
    assert not database_exists(t, "precious")


def test_external_provider_picks_client_tools_of_the_server_major(embedded):
    t = embedded.pg_server(name="ext2").target()
    dsn = f"postgresql://{t.user}:{t.password}@{t.host}:{t.port}/postgres"
    server = ExternalProvider(config(provider="external", dsn=dsn)).pg_server(name="s")
    assert server.binaries.major == int(server.version.split(".")[0])


def test_docker_provider_without_engine_names_the_missing_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(ProviderUnavailable) as info:
        DockerProvider(config(provider="docker"))
    message = str(info.value)
    assert "needs a Docker engine" in message
    assert "/nonexistent/docker.sock" in message
    assert "--drill-provider=embedded" in message


ENGINE_PROBLEM = docker_engine_problem()


@pytest.mark.docker
@pytest.mark.skipif(ENGINE_PROBLEM is not None, reason=f"docker provider: {ENGINE_PROBLEM}")
def test_docker_provider_runs_postgres_and_minio():
    from harness.storage.s3 import S3ObjectStore

    provider = DockerProvider(config(provider="docker"))
    try:
        server = provider.pg_server(name="source")
        create_database(server.target(), "app")
        assert database_exists(server.target(), "app")
        store = S3ObjectStore(provider.s3_target(), "docker-bucket")
        store.create_bucket()
        store.put_bytes("k", b"v")
        assert store.get_bytes("k") == b"v"
    finally:
        provider.close()
