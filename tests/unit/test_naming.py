"""Names of databases and buckets made on shared systems."""

import re

import pytest

from harness.infra.naming import (
    MAX_DATABASE_NAME,
    bucket_name,
    bucket_name_problem,
    database_name,
    drill_namespace,
    new_run_id,
    server_namespace,
)

LONG_TEST = "test_accidental_deletion[logical-directory-2jobs-delete-without-where]" * 3


def test_run_ids_are_short_lowercase_and_differ():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9a-f]{6}", i) for i in ids)


@pytest.mark.parametrize(
    "test_name", ["test_x", LONG_TEST, "TEST_Ünïcode / spaces..and--dots", "___", "x" * 200]
)
@pytest.mark.parametrize("number", [1, 12345])
def test_bucket_names_are_valid_s3_names_unique_to_the_run(test_name, number):
    name = bucket_name("1a2b3c", test_name, number)
    assert bucket_name_problem(name) is None, name
    assert name.startswith("drill-1a2b3c-")
    assert name.endswith(f"-{number}")
    assert bucket_name("4d5e6f", test_name, number) != name


def test_bucket_name_problems_are_named():
    assert bucket_name_problem("ab") is not None
    assert bucket_name_problem("Upper") is not None
    assert bucket_name_problem("ends-with-") is not None
    assert bucket_name_problem("192.168.1.1") is not None
    assert bucket_name_problem("a" * 64) is not None
    assert bucket_name_problem("xn--bucket") is not None


def test_database_names_are_short_identifiers_unique_per_run_drill_and_server():
    owner = {}
    for run in ("1a2b3c", "4d5e6f"):
        for drill in (1, 9, 123456):
            for server in (1, 2, 11):
                ns = server_namespace(drill_namespace(run, drill), server)
                for db in ("app", "a" * 100, "ünïcode db"):
                    name = database_name(ns, db)
                    assert len(name.encode()) <= MAX_DATABASE_NAME, name
                    assert re.fullmatch(r"[a-z0-9_]+", name), name
                    assert owner.setdefault(name, ns) == ns, f"{name} is shared by two servers"


def test_server_prefixes_never_overlap_within_a_drill():
    drill = drill_namespace("1a2b3c", 7)
    first, eleventh = server_namespace(drill, 1), server_namespace(drill, 11)
    assert not database_name(eleventh, "app").startswith(first)


def test_mapping_a_name_twice_changes_nothing():
    ns = server_namespace(drill_namespace("1a2b3c", 7), 2)
    once = database_name(ns, "app")
    assert database_name(ns, once) == once


def test_a_namespace_without_room_is_refused():
    with pytest.raises(ValueError, match="no room"):
        database_name("drill_" + "x" * 40, "app")
