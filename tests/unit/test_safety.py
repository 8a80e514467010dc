import pytest

from harness.config import PgTarget, S3Target
from harness.errors import UnsafeTargetError
from harness.pg.sql import drop_database
from harness.storage.s3 import S3ObjectStore


def test_drop_on_external_target_is_refused_before_any_connection():
    # Port 1 on a reserved name: a connection attempt would fail differently.
    target = PgTarget.from_dsn("postgresql://app:pw-7788@prod-db.invalid:1/shop")
    with pytest.raises(UnsafeTargetError) as info:
        drop_database(target, "shop")
    message = str(info.value)
    assert "prod-db.invalid" in message
    assert "--drill-allow-destructive=prod-db.invalid" in message
    assert "pw-7788" not in message


def test_object_delete_on_external_endpoint_is_refused_before_any_request():
    target = S3Target("http://backups.invalid:9", "AKIAEXAMPLE", "secret-value-1234")
    store = S3ObjectStore(target, "prod-backups")
    with pytest.raises(UnsafeTargetError, match="prod-backups"):
        store.delete("sets/latest/manifest.json")
