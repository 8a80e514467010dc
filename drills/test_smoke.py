"""Smoke drill: back up to the object store, lose the database, restore the set, compare.

It proves the pieces fit (servers, object store, backup set, ordered restore); the scenario
drills replace it.
"""

import pytest

from harness import (
    count_rows,
    create_database,
    drop_database,
    parse_location,
    restore_set,
    run_sql_file,
    take_backup,
)

pytestmark = pytest.mark.drill


@pytest.mark.parametrize("fmt", ["custom", "directory"], ids=["pg_dump-custom", "pg_dump-dir"])
def test_database_lost_and_restored_from_object_store(
    pg_source, pg_restore_target, object_store, drill_workdir, drill_record, drill_fixtures, fmt
):
    app = pg_source.target("app")
    create_database(app, app.dbname)
    run_sql_file(app, drill_fixtures / "smoke.sql")
    rows_before = count_rows(app, "public", "items")

    location = parse_location(f"s3://{object_store.bucket}/smoke", s3=object_store.target)
    backup = take_backup(app, location, fmt=fmt, jobs=2)
    drop_database(app, app.dbname)  # the disaster

    restored = restore_set(location, pg_restore_target.target("app"), workdir=drill_workdir)
    rows_after = count_rows(pg_restore_target.target("app"), "public", "items")

    drill_record.add("backup set", f"{location.uri} ({len(backup.manifest.artifacts)} artifacts)")
    drill_record.add("backup seconds", f"{backup.seconds:.2f}")
    drill_record.add("restore seconds", f"{restored.seconds:.2f}")
    drill_record.add("rows before / after", f"{rows_before} / {rows_after}")
    assert rows_before == 1000
    assert rows_after == rows_before
    assert all(check.ok for check in restored.checks)
