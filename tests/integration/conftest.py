"""Integration tests run real PostgreSQL and S3 servers on this machine."""

import os
import tempfile
from pathlib import Path

import pytest

from harness.infra.pg_server import ClusterTemplate
from harness.infra.privilege import choose_identity
from harness.pg.binaries import available, find_binaries


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def identity():
    return choose_identity("auto")


@pytest.fixture(scope="session")
def default_template(identity, tmp_path_factory):
    return ClusterTemplate(
        find_binaries(), base_dir=tmp_path_factory.mktemp("tpl"), identity=identity
    )


@pytest.fixture(scope="session")
def majors():
    return sorted({b.major for b in available()})


@pytest.fixture
def second_major(majors):
    """A PostgreSQL major version other than the default one, where the machine has it."""
    default = find_binaries().major
    others = [m for m in majors if m != default]
    if not others:
        pytest.skip(
            "needs a second PostgreSQL major version "
            "(apt-get install postgresql-15); only "
            f"{default} is installed"
        )
    return others[0]


@pytest.fixture
def public_tmp():
    """A directory outside root's private temp dirs (for the system-user mode)."""
    path = Path(tempfile.mkdtemp(prefix="drill-it-"))
    os.chmod(path, 0o755)
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)
