import pytest

from harness.config import PgTarget
from harness.infra.janitor import databases_in

NOWHERE = PgTarget("127.0.0.1", 1, "postgres", "postgres", password="never-used-1")


@pytest.mark.parametrize("prefix", ["", "drill_", "app", "drill"])
def test_only_drill_namespaces_are_swept(prefix):
    # Refused before any connection: a bare or foreign prefix would match the user's data.
    with pytest.raises(ValueError, match="not a drill namespace"):
        databases_in(NOWHERE, prefix)
