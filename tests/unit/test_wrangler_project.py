"""The throwaway wrangler project: its wrangler.toml follows the declared resources."""

import tomllib

import pytest

from harness.errors import ConfigError
from harness.infra.wrangler_project import WranglerProject


def config(project):
    return tomllib.loads((project.root / "wrangler.toml").read_text())


def test_declared_resources_appear_in_wrangler_toml(tmp_path):
    project = WranglerProject(tmp_path / "p", tmp_path / "wrangler")
    db = project.add_d1("DB", "machipoke-db")
    kv = project.add_kv("SESSIONS")
    project.add_r2("IMAGES", "machipoke-images")
    toml = config(project)
    assert toml["d1_databases"] == [
        {"binding": "DB", "database_name": "machipoke-db", "database_id": db.id}
    ]
    assert toml["kv_namespaces"] == [{"binding": "SESSIONS", "id": kv.id}]
    assert toml["r2_buckets"] == [{"binding": "IMAGES", "bucket_name": "machipoke-images"}]


def test_rebinding_points_the_binding_at_the_restored_database(tmp_path):
    project = WranglerProject(tmp_path / "p", tmp_path / "wrangler")
    old = project.add_d1("DB", "machipoke-db")
    fresh = project.add_spare_d1("machipoke-db-restored")
    project.rebind_d1("DB", fresh.name)
    bound = {
        d["binding"]: (d["database_name"], d["database_id"])
        for d in config(project)["d1_databases"]
    }
    assert bound["DB"] == (fresh.name, fresh.id)
    assert (old.name, old.id) in bound.values()  # the damaged one stays, for forensics
    with pytest.raises(ConfigError, match="no spare D1 database nowhere"):
        project.rebind_d1("DB", "nowhere")


def test_bad_names_and_a_used_directory_are_refused(tmp_path):
    project = WranglerProject(tmp_path / "p", tmp_path / "wrangler")
    with pytest.raises(ConfigError, match="is not a binding name"):
        project.add_kv("sessions")
    with pytest.raises(ConfigError, match="is not a resource name"):
        project.add_r2("IMAGES", "Bad_Bucket")
    project.add_d1("DB", "db")
    with pytest.raises(ConfigError, match="already declared"):
        project.add_d1("DB", "db")
    with pytest.raises(ConfigError, match="is not empty"):
        WranglerProject(tmp_path / "p", tmp_path / "wrangler")
