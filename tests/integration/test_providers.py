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
    import psutil

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


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


def _dsn(target):
    return f"postgresql://{target.user}:{target.password}@{target.host}:{target.port}/postgres"


@pytest.mark.parametrize("backend", ["moto", "seaweedfs"])
def test_external_postgres_can_keep_backups_on_a_throwaway_s3_without_credentials(
    embedded, tmp_path, backend
):
    from harness.storage.s3 import S3ObjectStore

    dsn = _dsn(embedded.pg_server(name="ext-s3").target())
    external = ExternalProvider(
        config(provider="external", dsn=dsn, s3=backend), base_dir=tmp_path / "ext"
    )
    try:
        assert external.s3_throwaway
        store = S3ObjectStore(external.s3_target(), "drill-throwaway-s3")
        store.create_bucket()
        store.put_bytes("k", b"v")
        assert store.get_bytes("k") == b"v"
        assert any(f.label == "S3" for f in external.facts())
    finally:
        external.close()


def test_external_provider_with_its_own_s3_still_needs_credentials(embedded):
    dsn = _dsn(embedded.pg_server(name="ext-cred").target())
    external = ExternalProvider(config(provider="external", dsn=dsn))
    assert not external.s3_throwaway
    with pytest.raises(ConfigError, match=r"needs credentials.*--drill-s3=moto"):
        external.s3_target()


def test_each_drill_works_in_databases_of_its_own_dropped_on_release(embedded):
    t = embedded.pg_server(name="shared").target()
    external = ExternalProvider(
        config(provider="external", dsn=_dsn(t), allow_destructive="127.0.0.1")
    )
    first = external.pg_server(name="source", namespace="drill_1a2b3c_1_1_")
    second = external.pg_server(name="source", namespace="drill_1a2b3c_2_1_")
    apps = [first.target("app"), second.target("app")]
    assert apps[0].dbname != apps[1].dbname
    assert first.target().dbname == "postgres", "the maintenance database is not mapped"
    for app in apps:
        create_database(app, app.dbname)

    external.release(first, keep=True)  # a failed drill: on a shared server, dropped anyway
    assert not database_exists(t, apps[0].dbname)
    assert database_exists(t, apps[1].dbname)
    external.close()  # a drill that never got released: swept at session end
    assert not database_exists(t, apps[1].dbname)


def test_keep_all_keeps_a_drills_databases_on_the_external_server(embedded):
    t = embedded.pg_server(name="keep").target()
    external = ExternalProvider(config(provider="external", dsn=_dsn(t), keep="all"))
    server = external.pg_server(name="source", namespace="drill_1a2b3c_3_1_")
    app = server.target("app")
    create_database(app, app.dbname)
    external.release(server, keep=True)
    external.close(keep=True)
    assert database_exists(t, app.dbname)


def test_an_external_server_cannot_be_given_server_settings(embedded):
    from harness.errors import UnsupportedByProvider
    from harness.infra.pg_server import ServerSettings

    external = ExternalProvider(
        config(provider="external", dsn=_dsn(embedded.pg_server(name="s").target()))
    )
    with pytest.raises(UnsupportedByProvider, match="embedded provider"):
        external.pg_server(name="source", settings=ServerSettings(wal_level="logical"))
