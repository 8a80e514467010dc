"""Smoke drill: dump to the object store, lose the database, restore, count the rows.

It proves the pieces fit (server, object store, client tools); the scenario drills replace it.
"""

from pathlib import Path

import pytest

from harness import (
    count_rows,
    create_database,
    database_exists,
    drop_database,
    dump_database,
    restore_dump,
    run_sql_file,
    sha256_file,
)

pytestmark = pytest.mark.drill

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("fmt", ["custom"], ids=["pg_dump-custom"])
def test_database_lost_and_restored_from_object_store(
    pg_source, object_store, drill_workdir, drill_record, fmt
):
    app = pg_source.target("app")
    create_database(app, "app")
    run_sql_file(app, FIXTURES / "smoke.sql")
    rows_before = count_rows(app, "public", "items")

    dump = dump_database(pg_source.binaries, app, drill_workdir / "app.dump", fmt=fmt)
    object_store.put_file("smoke/app.dump", dump.path)
    digest = sha256_file(dump.path)

    drop_database(app, "app")
    assert not database_exists(app, "app")

    fetched = drill_workdir / "fetched.dump"
    object_store.get_file("smoke/app.dump", fetched)
    assert sha256_file(fetched) == digest, "the object store returned different bytes"
    create_database(app, "app")
    restore_dump(pg_source.binaries, app, fetched)

    rows_after = count_rows(app, "public", "items")
    drill_record.add("dump", f"{dump.tool}, {dump.size} bytes, sha256 {digest}")
    drill_record.add("object store", object_store.location)
    drill_record.add("rows before / after", f"{rows_before} / {rows_after}")
    assert rows_before == 1000
    assert rows_after == rows_before
